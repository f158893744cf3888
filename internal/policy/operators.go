package policy

import (
	"strconv"
	"strings"
)

// Operator is a base IAM condition operator: the operator name without the
// ForAllValues:/ForAnyValue: prefix and the IfExists suffix.
type Operator uint8

// The IAM condition operators.
const (
	StringEquals Operator = iota + 1
	StringNotEquals
	StringEqualsIgnoreCase
	StringNotEqualsIgnoreCase
	StringLike
	StringNotLike
	NumericEquals
	NumericNotEquals
	NumericLessThan
	NumericLessThanEquals
	NumericGreaterThan
	NumericGreaterThanEquals
	DateEquals
	DateNotEquals
	DateLessThan
	DateLessThanEquals
	DateGreaterThan
	DateGreaterThanEquals
	Bool
	BinaryEquals
	IpAddress
	NotIpAddress
	ArnEquals
	ArnLike
	ArnNotEquals
	ArnNotLike
	Null

	numOperators = iota + 1 // one past the last operator
)

// valueType is a set of IAM data types, used both for what an operator's
// values must look like and for what type a condition key has.
type valueType uint8

const (
	tString valueType = 1 << iota
	tNumeric
	tDate
	tBool
	tBinary
	tIP
	tARN

	tAny = tString | tNumeric | tDate | tBool | tBinary | tIP | tARN
)

// String names the types in t, for messages: "String", "Date or Numeric".
func (t valueType) String() string {
	names := [...]string{"String", "Numeric", "Date", "Bool", "Binary", "IPAddress", "ARN"}
	var parts []string
	for i, n := range names {
		if t&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, " or ")
}

// opInfo describes a base operator.
type opInfo struct {
	name string
	// values is the type every value written for the operator must have.
	values valueType
	// keys is the set of key types the operator can be applied to.
	keys valueType
}

// operators is the read-only IAM operator table, indexed by Operator.
// String operators also apply to ARN keys, as in IAM; Null applies to any
// key and takes "true"/"false".
var operators = [numOperators]opInfo{
	StringEquals:              {"StringEquals", tString, tString | tARN},
	StringNotEquals:           {"StringNotEquals", tString, tString | tARN},
	StringEqualsIgnoreCase:    {"StringEqualsIgnoreCase", tString, tString | tARN},
	StringNotEqualsIgnoreCase: {"StringNotEqualsIgnoreCase", tString, tString | tARN},
	StringLike:                {"StringLike", tString, tString | tARN},
	StringNotLike:             {"StringNotLike", tString, tString | tARN},
	NumericEquals:             {"NumericEquals", tNumeric, tNumeric},
	NumericNotEquals:          {"NumericNotEquals", tNumeric, tNumeric},
	NumericLessThan:           {"NumericLessThan", tNumeric, tNumeric},
	NumericLessThanEquals:     {"NumericLessThanEquals", tNumeric, tNumeric},
	NumericGreaterThan:        {"NumericGreaterThan", tNumeric, tNumeric},
	NumericGreaterThanEquals:  {"NumericGreaterThanEquals", tNumeric, tNumeric},
	DateEquals:                {"DateEquals", tDate, tDate},
	DateNotEquals:             {"DateNotEquals", tDate, tDate},
	DateLessThan:              {"DateLessThan", tDate, tDate},
	DateLessThanEquals:        {"DateLessThanEquals", tDate, tDate},
	DateGreaterThan:           {"DateGreaterThan", tDate, tDate},
	DateGreaterThanEquals:     {"DateGreaterThanEquals", tDate, tDate},
	Bool:                      {"Bool", tBool, tBool},
	BinaryEquals:              {"BinaryEquals", tBinary, tBinary},
	IpAddress:                 {"IpAddress", tIP, tIP},
	NotIpAddress:              {"NotIpAddress", tIP, tIP},
	ArnEquals:                 {"ArnEquals", tARN, tARN},
	ArnLike:                   {"ArnLike", tARN, tARN},
	ArnNotEquals:              {"ArnNotEquals", tARN, tARN},
	ArnNotLike:                {"ArnNotLike", tARN, tARN},
	Null:                      {"Null", tBool, tAny},
}

// String returns the IAM name of the operator, e.g. "StringLike".
func (o Operator) String() string {
	if o == 0 || o >= numOperators {
		return "Operator(" + strconv.Itoa(int(o)) + ")"
	}
	return operators[o].name
}

// SetOp is the set-operator prefix of a condition operator.
type SetOp uint8

const (
	// SetOpNone: no prefix; the key is treated as single-valued.
	SetOpNone SetOp = iota
	// ForAllValues: every value of the (multi-valued) key must match.
	ForAllValues
	// ForAnyValue: at least one value of the key must match.
	ForAnyValue
)

// String returns "", "ForAllValues" or "ForAnyValue".
func (s SetOp) String() string {
	switch s {
	case SetOpNone:
		return ""
	case ForAllValues:
		return "ForAllValues"
	case ForAnyValue:
		return "ForAnyValue"
	}
	return "SetOp(" + strconv.Itoa(int(s)) + ")"
}

const (
	prefixForAll = "ForAllValues:"
	prefixForAny = "ForAnyValue:"
	suffixIf     = "IfExists"
)

// lookupOperator finds a base operator by its exact name.
func lookupOperator(name string) Operator {
	for o := Operator(1); o < numOperators; o++ {
		if operators[o].name == name {
			return o
		}
	}
	return 0
}

// parseOperator splits a condition operator as written into its parts. IAM
// operator names are case-sensitive. On failure msg says why.
func parseOperator(s string) (base Operator, set SetOp, ifExists bool, msg string) {
	rest := s
	switch {
	case strings.HasPrefix(rest, prefixForAll):
		set, rest = ForAllValues, rest[len(prefixForAll):]
	case strings.HasPrefix(rest, prefixForAny):
		set, rest = ForAnyValue, rest[len(prefixForAny):]
	}
	if r, ok := strings.CutSuffix(rest, suffixIf); ok {
		rest, ifExists = r, true
	}
	base = lookupOperator(rest)
	if base == 0 {
		if hint := suggestOperator(s); hint != "" && hint != s {
			return 0, 0, false, "unknown condition operator; operator names are case-sensitive: did you mean " + strconv.Quote(hint) + "?"
		}
		return 0, 0, false, "unknown condition operator"
	}
	if base == Null && ifExists {
		return 0, 0, false, "the Null operator cannot take the IfExists suffix"
	}
	return base, set, ifExists, ""
}

// suggestOperator returns the correctly spelled operator that s matches
// when case is ignored, or "".
func suggestOperator(s string) string {
	var prefix, suffix string
	rest := s
	for _, p := range []string{prefixForAll, prefixForAny} {
		if len(rest) >= len(p) && strings.EqualFold(rest[:len(p)], p) {
			prefix, rest = p, rest[len(p):]
			break
		}
	}
	if n := len(rest) - len(suffixIf); n > 0 && strings.EqualFold(rest[n:], suffixIf) {
		suffix, rest = suffixIf, rest[:n]
	}
	for o := Operator(1); o < numOperators; o++ {
		if strings.EqualFold(operators[o].name, rest) {
			return prefix + operators[o].name + suffix
		}
	}
	return ""
}
