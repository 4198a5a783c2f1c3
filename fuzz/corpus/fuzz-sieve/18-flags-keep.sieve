require "imap4flags";
addflag "\\Answered";
if header :contains "subject" "invoice" { keep :flags ["\\Seen", "invoice"]; }
