require ["ihave", "fileinto"];
# ihave (RFC 5463): supported extensions enable their commands in the
# block; an unsupported one's block is read for syntax only
if ihave "fileinto" { fileinto "has-fileinto"; }
if ihave ["copy", "imap4flags"] { fileinto :copy :flags "\\Seen" "copied"; }
# variables cannot be switched on by ihave (both refuse it)
if ihave "variables" { set "box" "x"; fileinto "${box}"; }
if ihave "x-tern-frobnicate" {
  frobnicate :hard 3 ["a", "b"] { deeper (x, y :z "q"); }
} elsif allof (true, ihave "x-tern-nope") {
  nope;
} else {
  fileinto "no-frobnicate";
}
if not ihave "x-tern-frobnicate" { fileinto "not"; }
