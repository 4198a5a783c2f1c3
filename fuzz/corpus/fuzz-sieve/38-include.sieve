require ["include", "variables", "fileinto"];
# include (RFC 6609): :personal/:global, :once, :optional, return,
# global variables and the global namespace
global "folder";
include :global "spam";
include "lists";
set "folder" "Lists";
set "local" "main";
include :personal "lists";
include :once "flagged";
include :once "flagged";
include :optional "no-such-script";
if string :is "${local}" "main" { fileinto "locals-kept"; }
if string :is "${global.seen}" "lists,flagged," { fileinto "seen-once"; }
keep;
