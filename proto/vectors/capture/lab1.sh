#!/bin/bash
# BIRD (wirecap-bird, 198.18.77.1) <-> FRR bfdd (wirecap-frr, 198.18.77.2)
set -u
D=/tmp/wirecap/lab1
rm -rf $D; mkdir -p $D/bird $D/frr $D/vartmp
NB=wirecap-bird; NF=wirecap-frr
log(){ echo "[$(date +%T.%N | cut -c1-12)] $*"; }
ip netns add $NB; ip netns add $NF
ip link add wc-b type veth peer name wc-f
ip link set wc-b netns $NB; ip link set wc-f netns $NF
ip -n $NB addr add 198.18.77.1/24 dev wc-b; ip -n $NB link set wc-b up; ip -n $NB link set lo up
ip -n $NF addr add 198.18.77.2/24 dev wc-f; ip -n $NF link set wc-f up; ip -n $NF link set lo up

birdconf(){ # $1 = tx/rx interval ms
cat > $D/bird/bird.conf <<EOC
router id 198.18.77.1;
log "$D/bird/bird.log" all;
protocol device { scan time 10; }
protocol bfd bfd1 {
  interface "wc-b" { min rx interval $1 ms; min tx interval $1 ms; idle tx interval 1000 ms; multiplier 3; };
  neighbor 198.18.77.2 dev "wc-b";
}
EOC
}
birdconf 300

cat > $D/frr/zebra.conf <<EOC
hostname wirecap-frr
EOC
cat > $D/frr/bfdd.conf <<EOC
hostname wirecap-frr
bfd
 peer 198.18.77.1 interface wc-f
  receive-interval 300
  transmit-interval 300
  detect-multiplier 3
 exit
exit
EOC
chown -R frr:frr $D/frr $D/vartmp

ip netns exec $NB tshark -q -i wc-b -f 'udp port 3784' -a duration:75 -w $D/cap.pcap > $D/tshark.log 2>&1 &
TSHARK=$!
echo $TSHARK > $D/tshark.pid
sleep 3
log "start bird"
ip netns exec $NB bird -c $D/bird/bird.conf -s $D/bird/bird.ctl -P $D/bird/bird.pid
sleep 4
log "start frr"
ip netns exec $NF unshare -m sh -c "mount --bind $D/vartmp /var/tmp && /usr/lib/frr/zebra -d -A 127.0.0.1 -P 0 -i $D/frr/zebra.pid -z $D/frr/zserv.api --vty_socket $D/frr -f $D/frr/zebra.conf"
sleep 1
ip netns exec $NF unshare -m sh -c "mount --bind $D/vartmp /var/tmp && /usr/lib/frr/bfdd -d -A 127.0.0.1 -P 0 -i $D/frr/bfdd.pid -z $D/frr/zserv.api --vty_socket $D/frr -f $D/frr/bfdd.conf --bfdctl $D/frr/bfdd.sock"
sleep 8
log "state after up:"; ip netns exec $NB birdc -s $D/bird/bird.ctl show bfd sessions
ip netns exec $NF vtysh --vty_socket $D/frr -c 'show bfd peers brief'
log "bird reconfigure 200ms (poll from bird)"
birdconf 200
ip netns exec $NB birdc -s $D/bird/bird.ctl configure
sleep 6
log "frr reconfigure 250ms (poll from frr)"
ip netns exec $NF vtysh --vty_socket $D/frr -c 'configure terminal' -c 'bfd' -c 'peer 198.18.77.1 interface wc-f' -c 'transmit-interval 250' -c 'receive-interval 250'
sleep 6
ip netns exec $NF vtysh --vty_socket $D/frr -c 'show bfd peers'
log "frr shutdown (admindown from frr)"
ip netns exec $NF vtysh --vty_socket $D/frr -c 'configure terminal' -c 'bfd' -c 'peer 198.18.77.1 interface wc-f' -c 'shutdown'
sleep 5
log "frr no shutdown"
ip netns exec $NF vtysh --vty_socket $D/frr -c 'configure terminal' -c 'bfd' -c 'peer 198.18.77.1 interface wc-f' -c 'no shutdown'
sleep 8
ip netns exec $NB birdc -s $D/bird/bird.ctl show bfd sessions
log "bird disable bfd1 (admindown from bird?)"
ip netns exec $NB birdc -s $D/bird/bird.ctl disable bfd1
sleep 5
log "stop daemons"
for f in $D/bird/bird.pid $D/frr/bfdd.pid $D/frr/zebra.pid; do [ -f $f ] && kill $(cat $f) && log "killed $f $(cat $f)"; done
sleep 2
kill -INT $TSHARK 2>/dev/null; wait $TSHARK
ip netns del $NB; ip netns del $NF
log done
