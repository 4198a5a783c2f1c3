require ["include","variables"];
global "g";
include :once "self";
include :optional :global "b";
include "b";
set "global.x" "${global.x}${g}";
include :optional "err";
return;
