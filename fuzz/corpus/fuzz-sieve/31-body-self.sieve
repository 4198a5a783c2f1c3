require "body";
if body :content "text" :contains "x" { discard; }
# MIME-Version: 1.0
# Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain
Content-Transfer-Encoding: base64

eA==
--b--
