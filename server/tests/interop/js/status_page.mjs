// Loads Vireo's status page (/) in headless Debian Chromium and prints what a
// browser sees: the title, the table's rows as JSON, and every console message
// (a Content-Security-Policy violation shows there). Used by
// test_status_page.py. Usage: node status_page.mjs URL
import { chromium } from "playwright-core";

const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"],
});
try {
  const page = await browser.newPage();
  const console_ = [];
  page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  const response = await page.goto(url, { timeout: 20000 });
  const rows = await page.$$eval("#status tr", (trs) =>
    trs.map((tr) => [tr.querySelector("th").textContent, tr.querySelector("td").textContent]));
  const bold = await page.$eval("th", (th) => getComputedStyle(th).textAlign);
  console.log(`status: ${response.status()}`);
  console.log(`title: ${await page.title()}`);
  console.log(`rows: ${JSON.stringify(Object.fromEntries(rows))}`);
  console.log(`style: th text-align ${bold}`);
  for (const c of console_) console.log(`console: ${c}`);
  console.log("OK");
} finally {
  await browser.close();
}
