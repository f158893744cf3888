package policy

import "testing"

func TestPrincipalFromARN(t *testing.T) {
	cases := []struct {
		arn  string
		want Principal
	}{
		{userARN, Principal{ARN: userARN, Account: acct, Type: "User", Username: "alice"}},
		{"arn:aws:iam::123456789012:user/dev/bob", Principal{ARN: "arn:aws:iam::123456789012:user/dev/bob", Account: acct, Type: "User", Username: "bob"}},
		{roleARN, Principal{ARN: roleARN, Account: acct, Type: "AssumedRole"}},
		{session, Principal{ARN: roleARN, SessionARN: session, Account: acct, Type: "AssumedRole"}},
		{"arn:aws:iam::123456789012:root", Principal{ARN: "arn:aws:iam::123456789012:root", Account: acct, Type: "Account", UserID: acct}},
		{"arn:aws:sts::123456789012:federated-user/carol", Principal{ARN: "arn:aws:sts::123456789012:federated-user/carol", SessionARN: "arn:aws:sts::123456789012:federated-user/carol", Account: acct, Type: "FederatedUser"}},
	}
	for _, tc := range cases {
		got, err := PrincipalFromARN(tc.arn)
		if err != nil {
			t.Errorf("%s: %v", tc.arn, err)
			continue
		}
		if got.ARN != tc.want.ARN || got.SessionARN != tc.want.SessionARN || got.Account != tc.want.Account ||
			got.Type != tc.want.Type || got.Username != tc.want.Username || got.UserID != tc.want.UserID {
			t.Errorf("%s: got %+v, want %+v", tc.arn, got, tc.want)
		}
	}
	for _, bad := range []string{"", "arn:aws:iam::123:user/x", "arn:aws:s3:::bucket", "arn:aws:iam::123456789012:group/g", "arn:aws:sts::123456789012:assumed-role/r"} {
		if _, err := PrincipalFromARN(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPrincipalDisplay(t *testing.T) {
	for _, tc := range []struct {
		p    Principal
		want string
	}{
		{Principal{}, "anonymous"},
		{Principal{ARN: roleARN, SessionARN: session}, session},
		{Principal{ARN: userARN}, userARN},
		{Principal{Service: "lambda.amazonaws.com"}, "lambda.amazonaws.com"},
		{Principal{FederatedProvider: "cognito-identity.amazonaws.com"}, "cognito-identity.amazonaws.com"},
	} {
		if got := tc.p.Display(); got != tc.want {
			t.Errorf("Display() = %q, want %q", got, tc.want)
		}
	}
}
