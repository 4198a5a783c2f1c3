require ["include", "variables", "fileinto"];
# an included script: its own variables, the global ones shared
global "folder";
set "local" "from-lists";
if string :is "${folder}" "" { return; }
fileinto "${folder}";
set "global.seen" "${global.seen}lists,";
