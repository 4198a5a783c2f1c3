require ["vacation", "reject"];
# RFC 5230 4.7: vacation once per script
vacation "first";
if exists "subject" {
  vacation "second";
}
