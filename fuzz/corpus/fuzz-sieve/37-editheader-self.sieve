require ["editheader","variables"];
X-A: 1
X-A: 2

addheader "X-ä" "v";addheader :last "${1}" "ä
b";deleteheader :index 2 :last :matches "x-a" "*";keep;
