// examples/server.ts in a real headless Chromium (Debian `chromium`, driven over the DevTools
// protocol): type a prompt, press Send, watch the reply arrive in several streamed chunks, and
// compare it with the API's non-streamed reply for the same seed. The page's screenshot is written to
// $KILN_TEST_OUT (default: the temp folder) and its path printed. Skips where chromium is absent,
// unless KILN_TEST_CHROMIUM=1 (CI installs it, see .ci/run).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";
import { makeTinyModel } from "./tiny_model.ts";

const ROOT = join(import.meta.dir, "..", "..");
const CHROMIUM = Bun.which("chromium") ?? Bun.which("chromium-browser");
if (!CHROMIUM && process.env.KILN_TEST_CHROMIUM === "1") throw new Error("KILN_TEST_CHROMIUM=1 but no chromium on PATH");

let dir: string;
let profile: string;
let app: ReturnType<typeof Bun.spawn> | undefined;
let browser: ReturnType<typeof Bun.spawn> | undefined;

async function firstLine(stream: ReadableStream<Uint8Array>, pattern: RegExp): Promise<RegExpExecArray> {
  const reader = stream.getReader();
  let text = "";
  for (;;) {
    const m = pattern.exec(text);
    if (m) {
      reader.releaseLock();
      return m;
    }
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
    text += new TextDecoder().decode(value);
  }
}

/** A minimal DevTools-protocol client over the page's WebSocket. */
async function devtools(wsUrl: string) {
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)));
  let id = 0;
  const pending = new Map<number, (r: { result?: any; error?: unknown }) => void>();
  ws.onmessage = (e) => {
    const msg = JSON.parse(String(e.data));
    pending.get(msg.id)?.(msg);
  };
  const send = (method: string, params: object = {}) =>
    new Promise<any>((resolve, reject) => {
      pending.set(++id, (r) => (r.error ? reject(new Error(JSON.stringify(r.error))) : resolve(r.result)));
      ws.send(JSON.stringify({ id, method, params }));
    });
  const evaluate = async (expression: string) => (await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true })).result.value;
  return { send, evaluate, close: () => ws.close() };
}

describe.skipIf(!CHROMIUM)("examples/server.ts chat page in headless Chromium", () => {
  beforeAll(async () => {
    useBackend(await getBackend("wasm"));
    dir = await makeTinyModel();
    profile = await mkdtemp(join(tmpdir(), "kiln-chromium-"));
  });
  afterAll(async () => {
    browser?.kill();
    app?.kill();
    await Promise.all([browser?.exited, app?.exited]);
    await rm(dir, { recursive: true, force: true });
    await rm(profile, { recursive: true, force: true });
  });

  test("a typed prompt gets a streamed reply equal to the API's answer for the same seed; screenshot saved", async () => {
    app = Bun.spawn([process.execPath, join(ROOT, "examples", "server.ts"), dir, "0"], { cwd: ROOT, stdout: "pipe", stderr: "inherit", env: { ...process.env, KILN_BACKEND: "wasm" } });
    const base = (await firstLine(app.stdout as ReadableStream<Uint8Array>, /on (http:\/\/127\.0\.0\.1:\d+)\//))[1];
    expect(((await (await fetch(`${base}/about`)).json()) as { app: string }).app).toBe("kiln example"); // the app's own route
    const name = dir.split("/").pop();
    const messages = [{ role: "user", content: "Hello kiln" }];
    const want = (await (await fetch(`${base}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: name, messages, max_tokens: 64, temperature: 0.9, seed: 7 }) })).json()) as { choices: { message: { content: string } }[] };

    browser = Bun.spawn([CHROMIUM!, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank"], { stdout: "ignore", stderr: "pipe" });
    const port = (await firstLine(browser.stderr as ReadableStream<Uint8Array>, /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//))[1];
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { type: string; webSocketDebuggerUrl: string }[];
    const page = await devtools(targets.find((t) => t.type === "page")!.webSocketDebuggerUrl);
    await page.send("Page.enable");
    await page.send("Page.navigate", { url: base + "/" });
    for (let i = 0; i < 100 && (await page.evaluate("document.readyState")) !== "complete"; i++) await Bun.sleep(50);
    await page.evaluate(`document.getElementById("prompt").value = "Hello kiln"; document.getElementById("temperature").value = "0.9"; document.getElementById("seed").value = "7"; document.getElementById("send").click(); true`);
    let state: { done?: string; chunks?: string; text: string } = { text: "" };
    for (let i = 0; i < 600 && !state.done; i++) {
      await Bun.sleep(50);
      state = await page.evaluate(`(() => { const d = document.querySelector(".assistant"); return d ? { ...d.dataset, text: d.textContent } : { text: "" }; })()`);
    }
    const shot = await page.send("Page.captureScreenshot", { format: "png" });
    const out = join(process.env.KILN_TEST_OUT ?? tmpdir(), "kiln-chat-page.png");
    await writeFile(out, Buffer.from(shot.data, "base64"));
    console.log(`chat page screenshot: ${out}`);
    page.close();
    expect(state.done).toBe("yes");
    expect(state.text).toBe(want.choices[0].message.content);
    expect(Number(state.chunks)).toBeGreaterThan(1); // it arrived in pieces, not at once
  }, 60_000); // a browser start on a busy machine
});
