require ["environment","variables","relational"];
if environment :matches "host" "*.*" { set "a" "${2}"; }
if environment :count "ge" "phase" "1" { keep; }
