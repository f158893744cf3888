package policy

import "strings"

// latticePrefix is the service prefix of the Lattice data plane: its
// actions (Invoke, Connect) and its condition keys.
const latticePrefix = "vpc-lattice-svcs"

// latticeActions are the actions of the vpc-lattice-svcs service.
var latticeActions = [...]string{"Invoke", "Connect"}

// conditionKeys maps lower-cased condition key names to their IAM data
// types. It holds the AWS global keys and the vpc-lattice-svcs keys.
// Multi-valued keys (aws:TagKeys, aws:PrincipalOrgPaths, aws:CalledVia,
// vpc-lattice-svcs:RequestQueryString/<key>, ...) are String typed.
var conditionKeys = map[string]valueType{
	"aws:calledvia":                    tString,
	"aws:calledviafirst":               tString,
	"aws:calledvialast":                tString,
	"aws:currenttime":                  tDate,
	"aws:ec2instancesourceprivateipv4": tIP,
	"aws:ec2instancesourcevpc":         tString,
	"aws:epochtime":                    tDate | tNumeric,
	"aws:federatedprovider":            tString,
	"aws:multifactorauthage":           tNumeric,
	"aws:multifactorauthpresent":       tBool,
	"aws:principalaccount":             tString,
	"aws:principalarn":                 tARN,
	"aws:principalisawsservice":        tBool,
	"aws:principalorgid":               tString,
	"aws:principalorgpaths":            tString,
	"aws:principalservicename":         tString,
	"aws:principalservicenameslist":    tString,
	"aws:principaltype":                tString,
	"aws:referer":                      tString,
	"aws:requestedregion":              tString,
	"aws:resourceaccount":              tString,
	"aws:resourceorgid":                tString,
	"aws:resourceorgpaths":             tString,
	"aws:securetransport":              tBool,
	"aws:sourceaccount":                tString,
	"aws:sourcearn":                    tARN,
	"aws:sourceidentity":               tString,
	"aws:sourceip":                     tIP,
	"aws:sourceorgid":                  tString,
	"aws:sourceorgpaths":               tString,
	"aws:sourcevpc":                    tString,
	"aws:sourcevpcarn":                 tARN,
	"aws:sourcevpce":                   tString,
	"aws:tagkeys":                      tString,
	"aws:tokenissuetime":               tDate,
	"aws:useragent":                    tString,
	"aws:userid":                       tString,
	"aws:username":                     tString,
	"aws:viaawsservice":                tBool,
	"aws:vpcsourceip":                  tIP,

	"vpc-lattice-svcs:port":                  tNumeric,
	"vpc-lattice-svcs:requestmethod":         tString,
	"vpc-lattice-svcs:requestpath":           tString,
	"vpc-lattice-svcs:servicearn":            tARN,
	"vpc-lattice-svcs:servicenetworkarn":     tARN,
	"vpc-lattice-svcs:sourcevpc":             tString,
	"vpc-lattice-svcs:sourcevpcowneraccount": tString,
}

// conditionKeyFamilies maps lower-cased key prefixes ending in "/" to the
// type of every key "<prefix><name>"; name must be non-empty.
var conditionKeyFamilies = map[string]valueType{
	"aws:principaltag/":                    tString,
	"aws:requesttag/":                      tString,
	"aws:resourcetag/":                     tString,
	"vpc-lattice-svcs:requestheader/":      tString,
	"vpc-lattice-svcs:requestquerystring/": tString,
}

// keyStatus is the result of looking up a condition key.
type keyStatus uint8

const (
	keyUnknown  keyStatus = iota
	keyKnown              // a global or vpc-lattice-svcs key; its type is known
	keyNoSuffix           // a key family named without the part after "/"
)

// lookupKey finds the type of a condition key, comparing names
// case-insensitively as IAM does.
func lookupKey(key string) (valueType, keyStatus) {
	lower := strings.ToLower(key)
	if t, ok := conditionKeys[lower]; ok {
		return t, keyKnown
	}
	if i := strings.IndexByte(lower, '/'); i >= 0 {
		if t, ok := conditionKeyFamilies[lower[:i+1]]; ok {
			if i == len(lower)-1 {
				return 0, keyNoSuffix
			}
			return t, keyKnown
		}
		return 0, keyUnknown
	}
	if _, ok := conditionKeyFamilies[lower+"/"]; ok {
		return 0, keyNoSuffix
	}
	return 0, keyUnknown
}
