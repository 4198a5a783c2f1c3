// The HTML body sanitizer (web/src/sanitize.ts) against known XSS and
// tracking vectors, under jsdom: run with `node --test tests/web/`
// (tests/integration/test_webmail.py runs it too).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";

const web = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web");
const require = createRequire(join(web, "package.json"));
const esbuild = require("esbuild");
const { JSDOM } = require("jsdom");
const createDOMPurify = require("dompurify");

// sanitize.ts bundled for node (dompurify left to the caller's copy).
// Written below web/node_modules so that its import of dompurify resolves.
const dir = mkdtempSync(join(web, "node_modules", ".tern-test-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, "sanitize.mjs");
esbuild.buildSync({ entryPoints: [join(web, "src", "sanitize.ts")], bundle: true,
  format: "esm", platform: "node", outfile: out, external: ["dompurify"], logLevel: "error" });
const { sanitizeHtml, linkify, defuseHandlers } = await import(out);

const window = new JSDOM("").window;
const purify = createDOMPurify(window);

// The body of the sanitized document, parsed again (what the frame shows).
function clean(html, allow = false) {
  const s = sanitizeHtml(html, allow, purify);
  const doc = new JSDOM(s.html).window.document;
  return { doc, body: doc.body.innerHTML, blocked: s.blocked, html: s.html };
}

function noActive(doc) {
  for (const e of doc.body.querySelectorAll("*")) {
    for (const a of e.attributes) {
      assert.ok(!/^on/i.test(a.name), "handler " + a.name + " on " + e.tagName);
      assert.ok(!/^\s*(javascript|vbscript|data:text)/i.test(a.value), a.name + "=" + a.value);
    }
  }
  for (const t of ["script", "iframe", "frame", "object", "embed", "form", "base", "meta",
    "link", "svg", "math", "applet"]) {
    assert.equal(doc.body.querySelectorAll(t).length, 0, t + " kept");
  }
}

const VECTORS = {
  script: "<p>hi</p><script>alert(1)</script>",
  scriptSrc: '<script src="https://evil.example/x.js"></script>',
  onerror: '<img src="x" onerror="alert(1)">',
  onload: '<body onload="alert(1)"><div onmouseover="alert(1)">x</div></body>',
  jsHref: '<a href="javascript:alert(1)">x</a><a href=" JaVaScRiPt:alert(1)">y</a>',
  jsEntity: '<a href="&#106;avascript:alert(1)">x</a>',
  vbscript: '<a href="vbscript:msgbox(1)">x</a>',
  dataHtml: '<a href="data:text/html,<script>alert(1)</script>">x</a>',
  svgScript: '<svg><script>alert(1)</script><circle onload="alert(1)"/></svg>',
  svgAnimate: '<svg><a><animate attributeName="href" values="javascript:alert(1)"/><text>x</text></a></svg>',
  iframeSrcdoc: '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
  iframeSrc: '<iframe src="https://evil.example/"></iframe>',
  metaRefresh: '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
  formAction: '<form action="https://evil.example/"><input name="p"><button formaction="https://evil.example/">go</button></form>',
  baseHref: '<base href="https://evil.example/"><a href="x">x</a>',
  object: '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf">',
  mathml: '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  mxss: '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
  link: '<link rel="stylesheet" href="https://evil.example/x.css">',
};

for (const [name, html] of Object.entries(VECTORS)) {
  test("XSS vector: " + name, () => {
    for (const allow of [false, true]) noActive(clean(html, allow).doc);
  });
}

test("CSS expression and url(javascript:) are neutralised", () => {
  const { doc } = clean('<div style="width: expression(alert(1)); background: url(javascript:alert(1))">x</div>' +
    "<style>p { background: url('javascript:alert(1)') } @import 'https://evil.example/x.css';</style>");
  const html = doc.documentElement.outerHTML;
  assert.ok(!/expression\s*\(/i.test(doc.body.innerHTML));
  assert.ok(!/javascript:/i.test(html));
  assert.ok(!/@import/i.test(doc.body.innerHTML));
});

test("remote images blocked until allowed, counted", () => {
  const html = '<p>x</p><img src="https://tracker.example/p.gif" width="1">' +
    '<img srcset="https://tracker.example/a.png 1x">' +
    '<div style="background-image: url(https://tracker.example/b.png)">y</div>' +
    '<table background="https://tracker.example/c.png"><tr><td>z</td></tr></table>';
  const off = clean(html, false);
  assert.ok(!/tracker\.example/.test(off.body), off.body);
  assert.equal(off.blocked, 3);
  assert.match(off.html, /img-src data: cid:;/);
  const on = clean(html, true);
  assert.match(on.body, /src="https:\/\/tracker\.example\/p\.gif"/);
  assert.match(on.html, /img-src data: cid: https:;/);
  // plain http stays blocked even when allowed
  assert.ok(!/ src=/.test(clean('<img src="http://tracker.example/p.gif">', true).body));
});

test("the frame's own CSP allows no script and no connection", () => {
  const { doc } = clean("<p>x</p>");
  const csp = doc.querySelector('meta[http-equiv="Content-Security-Policy"]').content;
  assert.match(csp, /^default-src 'none';/);
  assert.ok(!/script-src/.test(csp));
});

test("links open outside the app without referrer; text kept", () => {
  const { doc } = clean('<p>Hello <b>world</b> <a href="https://example.org/a">a</a></p>');
  const a = doc.querySelector("a");
  assert.equal(a.getAttribute("target"), "_blank");
  assert.equal(a.getAttribute("rel"), "noopener noreferrer");
  assert.equal(a.getAttribute("href"), "https://example.org/a");
  assert.equal(doc.querySelector("b").textContent, "world");
});

test("handler attributes are renamed before parsing, text kept", () => {
  assert.equal(defuseHandlers('<body onload="x()"><img src=x onerror=y() /><p class=a onclick>go on now</p>'),
    '<body x-onload="x()"><img src=x x-onerror=y() /><p class=a x-onclick>go on now</p>');
  assert.equal(defuseHandlers('<svg/onload=1><a\tONmouseover = 2 title="on">'),
    '<svg/x-onload=1><a\tx-ONmouseover = 2 title="on">');
  assert.equal(defuseHandlers("a < b onclick=1, 3>2"), "a < b onclick=1, 3>2");
  const { doc } = clean('<img src="x" onerror="y()"><p onclick="z()">a</p>');
  noActive(doc);
  assert.equal(doc.body.innerHTML, '<img><p>a</p>');
});

test("linkify makes text nodes and http(s) links only", () => {
  const doc = new JSDOM("").window.document;
  const div = doc.createElement("div");
  div.append(linkify("see https://example.org/x?a=1. <b>not</b> javascript:alert(1)", doc));
  assert.equal(div.querySelectorAll("a").length, 1);
  assert.equal(div.querySelector("a").href, "https://example.org/x?a=1");
  assert.equal(div.querySelectorAll("b").length, 0);
  assert.match(div.textContent, /<b>not<\/b>/);
});
