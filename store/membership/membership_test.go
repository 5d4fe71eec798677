package membership

import "testing"

func TestParse(t *testing.T) {
	a, err := Parse("n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380", "tok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse("n3=http://10.0.0.3:2380,n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380", "tok")
	c, _ := Parse("n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380", "other")
	if a.ID != b.ID || a.ID == 0 {
		t.Errorf("cluster ID depends on flag order: %x vs %x", a.ID, b.ID)
	}
	if a.ID == c.ID {
		t.Errorf("cluster ID ignores the token")
	}
	m, ok := a.ByName("n2")
	if !ok || m.PeerURLs[0] != "http://10.0.0.2:2380" || m.ID == 0 {
		t.Errorf("n2 = %+v", m)
	}
	if len(a.IDs()) != 3 {
		t.Errorf("IDs = %v", a.IDs())
	}
	for _, bad := range []string{"", "n1", "n1=", "n1=ftp://x:1", "n1=http://", "a=http://x:1,b=http://x:1"} {
		if _, err := Parse(bad, "t"); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
