// The HTML body sanitizer (docs/webmail.md "Reading"): DOMPurify with
// scripts, handlers, forms, frames, objects, <base> and <meta> removed,
// links opened outside the app, and every remote load (img src/srcset,
// CSS url(), @import, background attributes) kept out until the reader
// allows it for that message.  The result goes into a sandboxed iframe
// (no allow-scripts) whose own CSP blocks what might still slip through.
import DOMPurify from "dompurify";

export interface Sanitized {
  html: string;        // a whole document for iframe.srcdoc
  blocked: number;     // remote loads held back
}

const FORBID_TAGS = ["script", "iframe", "frame", "frameset", "object", "embed", "applet",
  "form", "input", "button", "select", "textarea", "base", "meta", "link", "noscript",
  "template", "portal", "svg", "math"];
const FORBID_ATTR = ["srcdoc", "action", "formaction", "ping", "background", "poster",
  "lowsrc", "dynsrc", "xlink:href"];
const REMOTE_RE = /^\s*(https?:)?\/\//i;

// CSS text with its loads neutralised (counted in c.n), or kept when
// remote loads are allowed (only https: and data: URLs then).
function cleanCss(css: string, allow: boolean, c: { n: number }): string {
  if (/expression\s*\(|javascript:|behavior\s*:|-moz-binding/i.test(css)) {
    c.n++;
    css = css.replace(/expression\s*\(|javascript:|behavior\s*:|-moz-binding/gi, "blocked(");
  }
  css = css.replace(/@import[^;]*;?/gi, () => { c.n++; return ""; });
  if (allow) return css;
  return css.replace(/url\s*\((?:"[^"]*"|'[^']*'|[^)]*)\)?/gi, () => { c.n++; return "none"; })
    .replace(/image-set\s*\(/gi, () => { c.n++; return "blocked("; });
}

// The mail's markup with every on* attribute name inside a tag renamed
// (x-onload...) before any DOM sees it: chromium checks the page's CSP as
// it parses a handler attribute, even in DOMPurify's inert DOMParser
// document, and logs a refusal for each.  Only noise, not safety: what
// this misses (a ">" inside a quoted value) DOMPurify still removes.
export function defuseHandlers(input: string): string {
  return input.replace(/<[a-z][^>]*/gi, (tag) =>
    tag.replace(/([\s/"'])(on[\w-]*)(?=\s*=|[\s/>]|$)/gi, "$1x-$2"));
}

export function sanitizeHtml(input: string, allowRemote: boolean, purify = DOMPurify): Sanitized {
  input = defuseHandlers(input);
  const c = { n: 0 };
  purify.addHook("uponSanitizeElement", (node, data) => {
    if (data.tagName === "style" && node.textContent) {
      node.textContent = cleanCss(node.textContent, allowRemote, c);
    }
  });
  purify.addHook("afterSanitizeAttributes", (node) => {
    const el = node as Element;
    const style = el.getAttribute("style");
    if (style) el.setAttribute("style", cleanCss(style, allowRemote, c));
    for (const a of ["src", "srcset"]) {
      const v = el.getAttribute(a);
      if (v == null) continue;
      const remote = REMOTE_RE.test(v) || (a === "srcset" && /(https?:)?\/\//i.test(v));
      if (remote && !(allowRemote && /^\s*https:/i.test(v))) {
        el.removeAttribute(a);
        el.setAttribute("data-blocked-" + a, "");
        c.n++;
      } else if (!remote && a === "src" && !/^\s*(data:image\/|cid:)/i.test(v)) {
        el.removeAttribute(a);
      }
    }
    if (el.tagName === "A" && el.hasAttribute("href")) {
      el.setAttribute("target", "_blank");
      el.setAttribute("rel", "noopener noreferrer");
    }
  });
  try {
    const body = purify.sanitize(input, {
      FORBID_TAGS, FORBID_ATTR, WHOLE_DOCUMENT: false, ALLOW_DATA_ATTR: false,
      ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|cid:|data:image\/(?:png|gif|jpeg|webp);|#)/i,
      ADD_ATTR: ["target"],
    }) as string;
    const img = allowRemote ? "data: cid: https:" : "data: cid:";
    const csp = `default-src 'none'; img-src ${img}; style-src 'unsafe-inline'; font-src data:`;
    const html = `<!doctype html><html><head><meta charset="utf-8">` +
      `<meta http-equiv="Content-Security-Policy" content="${csp}">` +
      `<base target="_blank"><style>body{margin:8px;font:14px/1.4 sans-serif;` +
      `overflow-wrap:anywhere}img{max-width:100%;height:auto}</style></head><body>` +
      body + `</body></html>`;
    return { html, blocked: c.n };
  } finally {
    purify.removeAllHooks();
  }
}

// Plain text as HTML-safe DOM: text nodes, with http(s) links made <a>.
export function linkify(text: string, doc: Document = document): DocumentFragment {
  const f = doc.createDocumentFragment();
  const re = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;
  let last = 0;
  for (const m of text.matchAll(re)) {
    const i = m.index ?? 0;
    f.append(doc.createTextNode(text.slice(last, i)));
    const a = doc.createElement("a");
    a.href = m[0];
    a.textContent = m[0];
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    f.append(a);
    last = i + m[0].length;
  }
  f.append(doc.createTextNode(text.slice(last)));
  return f;
}
