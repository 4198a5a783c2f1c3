// Drives the web app in Debian's chromium (puppeteer-core) for
// tests/integration/test_webmail.py: node browser.mjs URL USER PASSWORD
// ARTIFACTS.  Prints one JSON object of what it saw; the Python test
// asserts on it and on the server's state (IMAP) around it.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web");
const require = createRequire(join(web, "package.json"));
const puppeteer = require("puppeteer-core");

const [url, user, password, artifacts] = process.argv.slice(2);
const host = new URL(url).hostname;
const out = { steps: [] };
const remote = [];
const browser = await puppeteer.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  acceptInsecureCerts: true,
  args: ["--no-sandbox", `--host-resolver-rules=MAP ${host} 127.0.0.1, MAP *.remote.test 127.0.0.1`],
});
// puppeteer starts chromium in a process group of its own: the Python
// test kills that group too if this script times out (test_webmail.py)
writeFileSync(join(artifacts, "chromium.pid"), String(browser.process().pid));
const shot = (page, name) => page.screenshot({ path: join(artifacts, name + ".png") });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  await page.setViewport({ width: 1200, height: 800 });
  page.on("request", (r) => { if (r.url().includes("remote.test")) remote.push(r.url()); });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("dialog", (d) => { out.dialog = d.message(); d.dismiss(); });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("#login-user", { visible: true });
  await page.type("#login-user", user);
  await page.type("#login-pass", password);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector(".folder[aria-current=true]", { visible: true });
  await page.waitForSelector(".row .subj");
  out.whoami = await page.$eval("#whoami", (e) => e.textContent);
  out.inbox = await page.$eval(".folder[aria-current=true]", (e) => ({
    name: e.querySelector(".name").textContent, unread: e.querySelector(".n")?.textContent ?? "",
    label: e.getAttribute("aria-label") }));
  out.rows = await page.$$eval(".row", (rs) => rs.map((r) => ({
    from: r.querySelector(".from")?.textContent, subj: r.querySelector(".subj")?.textContent,
    unread: r.classList.contains("unread"), att: !!r.querySelector(".att") })));
  out.cookies = (await browser.cookies()).map((c) => ({ name: c.name, value: c.value,
    httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite }));
  out.documentCookie = await page.evaluate(() => document.cookie);
  await shot(page, "1-list");

  // the three-message thread
  // rows are redrawn at any time (virtual list, live updates): find and
  // click in one go
  const clickRow = (from) => page.evaluate((f) => {
    const r = [...document.querySelectorAll(".row")].find((x) => x.querySelector(".from")?.textContent === f);
    r.click();
  }, from);
  const readRow = (from) => page.waitForFunction((f) => [...document.querySelectorAll(".row")].some((r) =>
    r.querySelector(".from")?.textContent === f && !r.classList.contains("unread")), {}, from);
  await clickRow("Carol (3)");
  await page.waitForFunction(() => document.querySelectorAll("#reader .msg").length >= 3);
  out.thread = await page.$$eval("#reader .msg", (ms) => ms.map((m) => ({
    collapsed: m.classList.contains("collapsed"), text: m.querySelector("pre")?.textContent ?? "" })));
  // opening marks it read: wait for the list to show it
  await readRow("Carol (3)");
  await shot(page, "2-thread");

  // keyboard: j moves the selection
  await page.focus("#list");
  const sel = () => page.$eval(".row[aria-selected=true]", (e) => Number(e.dataset.i));
  out.keyboard = [await sel()];
  await page.keyboard.press("j");
  out.keyboard.push(await sel());
  await page.keyboard.press("k");
  out.keyboard.push(await sel());

  // the HTML mail: no script runs, no remote image until allowed
  await clickRow("Carol");
  await readRow("Carol");
  await page.waitForSelector("#reader iframe");
  const frameEl = await page.$("#reader iframe");
  const frame = await frameEl.contentFrame();
  await frame.waitForSelector("p");
  out.html = {
    sandbox: await page.$eval("#reader iframe", (f) => f.getAttribute("sandbox")),
    text: await frame.$eval("body", (b) => b.textContent),
    body: await frame.$eval("html", (b) => b.outerHTML),
    scripts: await frame.$$eval("script", (s) => s.length),
    ran: await frame.evaluate(() => document.body.getAttribute("data-ran") || document.title),
    parentTitle: await page.title(),
    notice: await page.$eval("#reader .remote", (e) => e.textContent),
    remoteBefore: remote.length,
  };
  await shot(page, "3-html-blocked");
  await page.click("#reader .remote button");
  await page.waitForFunction(() => !document.querySelector("#reader .remote"));
  const t0 = Date.now();
  while (remote.length === 0 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
  out.html.remoteAfter = [...remote];
  await shot(page, "4-html-allowed");

  // phone width: the list alone, the folders behind the menu button
  await page.setViewport({ width: 390, height: 800 });
  out.phone = await page.evaluate(() => ({
    menu: getComputedStyle(document.getElementById("menu")).display,
    folders: getComputedStyle(document.getElementById("folders")).display }));
  await shot(page, "5-phone");
  await page.setViewport({ width: 1200, height: 800 });

  await page.click("#logout");
  await page.waitForSelector("#login-user", { visible: true });
  out.afterLogout = await page.$eval("#login-error", (e) => e.textContent);
  out.errors = errors;
} catch (e) {
  out.error = String(e.stack || e);
  const [p] = await browser.pages();
  if (p) await shot(p, "error").catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
