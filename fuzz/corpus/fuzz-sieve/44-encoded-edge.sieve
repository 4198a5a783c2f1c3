require ["encoded-character","spamtestplus","variables"];
if spamtest :percent :matches "*" { set "a" "${unicode: 10FFFF D7FF E000 0}${hex:4 41 ff}"; }
