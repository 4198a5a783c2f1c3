# RFC 5173: :raw, :content (types, subtypes, multipart prologue/epilogue, message/rfc822 header), :text; no match variables
require ["body", "fileinto", "variables"];
if body :raw :contains "U0VDUkVUIHBheWxvYWQ=" { fileinto "raw-b64"; }
if body :raw :contains "SECRET" { fileinto "raw-decoded"; }
if body :content "application" :contains "SECRET payload" { fileinto "app"; }
if body :content "application/octet-stream" :contains "SECRET" { fileinto "app-full"; }
if body :content "application/" :contains "SECRET" { fileinto "app-bad"; }
if body :text :contains "Grüße aus Köln" { fileinto "text-utf8"; }
if body :contains "quarterly" { fileinto "default-text"; }
if body :content "multipart" :contains "prologue" { fileinto "prologue"; }
if body :content "multipart" :contains "Epilogue" { fileinto "epilogue"; }
if body :content "multipart" :contains "quarterly" { fileinto "multipart-no-nested"; }
if body :content "message/rfc822" :contains "Forwarded invoice" { fileinto "msg-header"; }
if body :content "message/rfc822" :contains "Nested body" { fileinto "msg-body-no"; }
if body :content "text" :contains "Nested body" { fileinto "nested-text"; }
if body :content "" :contains "SECRET" { fileinto "any"; }
if body :content ["image", "text/plain"] :matches "*numbers*" { fileinto "m-${1}"; }
if body :text :contains "Hello Bob" { fileinto "plain-hello"; }
if body :raw :contains "please find" { fileinto "plain-raw"; }
if body :content "text/plain" :contains "invoice attached" { fileinto "plain-ct"; }
