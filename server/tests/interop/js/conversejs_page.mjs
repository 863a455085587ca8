// Opens Vireo's /conversejs page in headless Debian Chromium and logs in
// through Converse's own login form, as a person would: the page and its
// start script come from Vireo, Converse's files from the directory the
// operator configured. Prints `loaded`, `logged in`, every console message
// (a CSP violation shows there) and `OK`. Used by test_conversejs_page.py.
// Usage: node conversejs_page.mjs URL JID PASSWORD
import { chromium } from "playwright-core";

const [url, jid, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--no-first-run", "--disable-background-networking", "--disable-component-update"],
});
let code = 1;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.log(`console: ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`pageerror: ${e.message}`));
  const response = await page.goto(url, { timeout: 20000 });
  console.log(`status: ${response.status()}`);
  await page.waitForSelector("#converse-login-jid", { timeout: 20000 });
  console.log("loaded");
  await page.fill("#converse-login-jid", jid);
  await page.fill("input[name=password]", password);
  await page.press("input[name=password]", "Enter");
  await page.waitForSelector("converse-roster", { timeout: 20000 });
  console.log("logged in");
  code = 0;
  console.log("OK");
} catch (e) {
  console.log(`FAILED: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(code);
