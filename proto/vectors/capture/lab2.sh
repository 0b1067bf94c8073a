#!/bin/bash
# BIRD (wirecap-b1, 198.18.77.1) <-> BIRD (wirecap-b2, 198.18.77.2), one phase per auth type.
set -u
D=/tmp/wirecap/lab2
rm -rf $D; mkdir -p $D
N1=wirecap-b1; N2=wirecap-b2
log(){ echo "[$(date +%T.%N | cut -c1-12)] $*"; }
ip netns add $N1; ip netns add $N2
ip link add wc-1 type veth peer name wc-2
ip link set wc-1 netns $N1; ip link set wc-2 netns $N2
ip -n $N1 addr add 198.18.77.1/24 dev wc-1; ip -n $N1 link set wc-1 up; ip -n $N1 link set lo up
ip -n $N2 addr add 198.18.77.2/24 dev wc-2; ip -n $N2 link set wc-2 up; ip -n $N2 link set lo up

conf(){ # $1=node $2=ifname $3=peer $4=auth $5=keyid $6=with_neighbor(1/0)
mkdir -p $D/$1
cat > $D/$1/bird.conf <<EOC
router id $3;
log "$D/$1/bird.log" all;
protocol device { scan time 10; }
protocol bfd bfd1 {
  interface "$2" {
    min rx interval 200 ms; min tx interval 200 ms; idle tx interval 1000 ms; multiplier 3;
    authentication $4;
    password "wirecap-secret" { id $5; };
  };
EOC
[ "$6" = 1 ] && echo "  neighbor $3 dev \"$2\";" >> $D/$1/bird.conf
echo "}" >> $D/$1/bird.conf
}
start(){ ip netns exec $1 bird -c $D/$2/bird.conf -s $D/$2/bird.ctl -P $D/$2/bird.pid; }
stop(){ [ -f $D/$1/bird.pid ] && { p=$(cat $D/$1/bird.pid); kill $p; log "killed $1 $p"; }; sleep 1; }

ip netns exec $N1 tshark -q -i wc-1 -f 'udp port 3784' -a duration:70 -w $D/cap.pcap > $D/tshark.log 2>&1 &
TSHARK=$!
sleep 3
id=1
for auth in "simple" "keyed md5" "meticulous keyed md5" "keyed sha1" "meticulous keyed sha1"; do
  log "phase: $auth id $id"
  conf b1 wc-1 198.18.77.2 "$auth" $id 1
  conf b2 wc-2 198.18.77.1 "$auth" $id 1
  start $N1 b1; start $N2 b2
  sleep 5
  ip netns exec $N1 birdc -s $D/b1/bird.ctl show bfd sessions | tail -1
  if [ "$auth" != "meticulous keyed sha1" ]; then stop b1; stop b2; fi
  id=$((id+1))
done
log "b1: reconfigure without neighbor (AdminDown?)"
conf b1 wc-1 198.18.77.2 "meticulous keyed sha1" 5 0
ip netns exec $N1 birdc -s $D/b1/bird.ctl configure
sleep 3
log "b1: back"
conf b1 wc-1 198.18.77.2 "meticulous keyed sha1" 5 1
ip netns exec $N1 birdc -s $D/b1/bird.ctl configure
sleep 4
ip netns exec $N1 birdc -s $D/b1/bird.ctl show bfd sessions | tail -1
log "b2: birdc down"
ip netns exec $N2 birdc -s $D/b2/bird.ctl down
sleep 3
stop b1; stop b2
kill -INT $TSHARK 2>/dev/null; wait $TSHARK
ip netns del $N1; ip netns del $N2
log done
