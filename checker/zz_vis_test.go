package checker
import ("testing";"os";"time")
func TestVisDump(t *testing.T) {
	ops, _ := readRegisterFixture(t, "testdata/register/invalid-two-of-three-keys.jsonl")
	res := Register(t.Context(), ops, time.Minute, "/tmp/two.html")
	t.Log(res)
	ops, _ = readRegisterFixture(t, "testdata/register/invalid-info-write-observed-then-older-value.jsonl")
	res = Register(t.Context(), ops, time.Minute, "/tmp/one.html")
	t.Log(res)
	_ = os.Stdout
}
