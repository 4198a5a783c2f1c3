require ["encoded-character", "fileinto", "imap4flags", "variables"];
# encoded-character (RFC 5228 2.4.2.4): the examples of the RFC as
# mailbox names, the sequences in header names, keys and flags
fileinto "$${hex:40}";
fileinto "a${hex: 40 }";
fileinto "b${HEX: 40}";
fileinto "c${hex:40";
fileinto "d${hex:400}";
fileinto "e${hex:4${hex:30}}";
fileinto "f${unicode:40}";
fileinto "g${ unicode:40}";
fileinto "h${UnICoDE:0000040}";
fileinto "i${Unicode:Cool}";
fileinto "j${hex:6b 6C}${unicode:6d 6E  6f}";
if header :contains "${hex:53 75 62 6a 65 63 74}" "${unicode:fc}${hex:c3 9f}e" {
  fileinto "umlaut";
}
if header :is "subject" "Invoice 2026-11 for ${unicode:41 43 4d 45}" { fileinto "acme"; }
if address :domain "from" "example.${hex:6f 72 67}" { addflag "${hex:5c}Flagged"; }
set "v" "x";
fileinto "k${hex:24}{v}";
# in a multi-line string too (the line breaks are CRLF, blanks)
if string :is text:
${hex:
 41 42
}
.
"AB${hex:0d 0a}" { fileinto "multiline"; }
