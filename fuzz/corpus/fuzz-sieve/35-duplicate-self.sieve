require ["duplicate","variables"];
Message-ID: <a@b>
X-Id:  q 

if duplicate :header "x-id" :handle "${1}" :seconds 0 :last {discard;}
if duplicate :uniqueid "" {keep;}
