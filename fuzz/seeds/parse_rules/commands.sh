sudo iptables --table nat --new-chain DUSTIN-SERVICES
sudo iptables --table nat --append PREROUTING --jump DUSTIN-SERVICES
iptables -t nat -I DUSTIN-SERVICES 1 -d 10.96.0.1 -p udp --dport 53 \
  -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.64.0.2:53
iptables -t nat -A DUSTIN-SERVICES ! -s 10.64.0.0/16 -m mark ! --mark 0x4000/0x4000 -j RETURN
iptables -t filter -P FORWARD DROP
iptables -t nat -D DUSTIN-SERVICES 1
iptables -t nat -E DUSTIN-SERVICES DUSTIN-SVC
iptables -L -n
