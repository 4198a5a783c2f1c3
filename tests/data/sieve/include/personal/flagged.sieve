require ["include", "variables"];
set "global.seen" "${global.seen}flagged,";
