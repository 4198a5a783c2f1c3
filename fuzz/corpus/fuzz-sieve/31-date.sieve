# RFC 5260 date and currentdate: zones, date parts, obsolete forms, invalid dates
require ["date", "index", "relational", "comparator-i;ascii-numeric", "fileinto", "variables"];
if date :originalzone "received" "date" "2026-12-07" { fileinto "r1-date"; }
if date :zone "+0000" "received" "iso8601" "2026-12-07T00:30:00Z" { fileinto "r1-utc"; }
if date :zone "+0000" "date" "day" "29" { fileinto "feb29-invalid"; }
if date :zone "+0000" "x-date" "date" "2026-12-07" { fileinto "pst"; }
if date :zone "+0000" "x-date" "hour" "07" { fileinto "pst-hour"; }
if date :zone "+0000" "x-date" "weekday" "1" { fileinto "monday"; }
if date :zone "+0000" "x-date" "julian" "61381" { fileinto "julian"; }
if date :value "ge" :comparator "i;ascii-numeric" :originalzone "received" "hour" "01" { fileinto "hour-ge"; }
if date :originalzone "date" "month" "12" { fileinto "dec"; }
if currentdate :value "ge" "year" "2024" { fileinto "now-ok"; }
if currentdate :zone "-0800" "zone" "-0800" { fileinto "cz"; }
