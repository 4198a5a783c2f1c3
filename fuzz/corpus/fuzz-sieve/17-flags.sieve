require ["imap4flags", "fileinto"];
setflag "\\Seen";
addflag ["\\Flagged", "work work"];
removeflag "work";
if hasflag :contains "\\flagged" { fileinto "flagged"; }
fileinto :flags "$Label1" "labelled";
addflag "late";
