package agent

import (
	"fmt"
	"hash/fnv"
	"net/netip"
)

// vips hands out one virtual address per client alias name from a CIDR,
// as ECS does from 127.255.0.0/16. An address depends only on the name
// and the agent's salt (a hash, probing on to the next free address on a
// collision), so a name usually keeps its address across restarts of an
// agent. Agents on one machine share the loopback range, so each salts
// its hash differently (with its instance address) and skips addresses
// another agent already holds (block). Not safe for concurrent use: the
// discovery loop owns it.
type vips struct {
	salt   string
	prefix netip.Prefix
	size   uint32 // usable addresses: the prefix minus network and broadcast
	byName map[string]netip.Addr
	taken  map[netip.Addr]string
}

func newVIPs(prefix netip.Prefix, salt string) (*vips, error) {
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return nil, fmt.Errorf("VIP range %s: want an IPv4 prefix of /30 or wider", prefix)
	}
	return &vips{salt: salt, prefix: prefix, size: 1<<(32-prefix.Bits()) - 2,
		byName: map[string]netip.Addr{}, taken: map[netip.Addr]string{}}, nil
}

// get returns name's address, assigning one if needed.
func (v *vips) get(name string) (netip.Addr, error) {
	if a, ok := v.byName[name]; ok {
		return a, nil
	}
	if uint32(len(v.taken)) >= v.size {
		return netip.Addr{}, fmt.Errorf("VIP range %s is full (%d names)", v.prefix, len(v.taken))
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(v.salt))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(name))
	base := v.prefix.Addr().As4()
	b := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := uint32(0); ; i++ {
		off := 1 + (h.Sum32()+i)%v.size // skip the network address
		n := b + off
		a := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		if _, used := v.taken[a]; !used {
			v.byName[name], v.taken[a] = a, name
			return a, nil
		}
	}
}

// block marks a as held by someone else (another agent bound it), so
// that no name gets it; name, which had it, gets another one on its next
// get.
func (v *vips) block(name string, a netip.Addr) {
	v.release(name)
	v.taken[a] = ""
}

// release frees name's address.
func (v *vips) release(name string) {
	if a, ok := v.byName[name]; ok {
		delete(v.byName, name)
		delete(v.taken, a)
	}
}
