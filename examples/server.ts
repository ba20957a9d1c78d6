// A Bun app that serves a model: a chat page at / (streamed replies) and kiln's OpenAI-compatible
// API under /v1, mounted next to the app's own routes. Run: bun examples/server.ts <model dir> [port]
// (a Hugging Face folder with a chat template), then open http://127.0.0.1:3000.
import { createServer, init, loadServedModel } from "../src/index.ts";

const [dir, port = "3000"] = process.argv.slice(2);
if (!dir) {
  console.error("usage: bun examples/server.ts <model dir> [port]");
  process.exit(2);
}
await init(process.env.KILN_BACKEND ?? "auto");
const model = await loadServedModel(dir);
const api = createServer({ models: [model] });

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>kiln chat</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  #log div { white-space: pre-wrap; margin: .5rem 0; padding: .5rem .75rem; border-radius: .5rem; }
  .user { background: #e8f0fe; } .assistant { background: #f1f3f4; }
  form { display: flex; gap: .5rem; } textarea { flex: 1; height: 3.5rem; }
</style></head>
<body>
<h1>kiln chat <small id="model"></small></h1>
<div id="log"></div>
<form id="form">
  <textarea id="prompt" placeholder="Say something"></textarea>
  <label>temperature <input id="temperature" type="number" value="0.7" step="0.1" min="0" max="2" size="3"></label>
  <label>seed <input id="seed" type="number" size="4"></label>
  <button id="send">Send</button>
</form>
<script>
const MODEL = ${JSON.stringify(model.name)};
document.getElementById("model").textContent = MODEL;
const messages = [];
const log = document.getElementById("log");
function bubble(role, text) {
  const div = document.createElement("div");
  div.className = role;
  div.textContent = text;
  log.append(div);
  return div;
}
document.getElementById("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const prompt = document.getElementById("prompt");
  if (!prompt.value) return;
  messages.push({ role: "user", content: prompt.value });
  bubble("user", prompt.value);
  prompt.value = "";
  const out = bubble("assistant", "");
  out.dataset.chunks = "0";
  const res = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: MODEL, messages, stream: true, max_tokens: 64,
      temperature: Number(document.getElementById("temperature").value),
      seed: document.getElementById("seed").value ? Number(document.getElementById("seed").value) : undefined,
    }),
  });
  if (!res.ok) { out.textContent = (await res.json()).error.message; out.dataset.done = "error"; return; }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const events = buffer.split("\\n\\n");
    buffer = events.pop();
    for (const ev of events) {
      const data = ev.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      const delta = JSON.parse(data).choices[0]?.delta?.content;
      if (delta) { out.textContent += delta; out.dataset.chunks = String(Number(out.dataset.chunks) + 1); }
    }
  }
  messages.push({ role: "assistant", content: out.textContent });
  out.dataset.done = "yes";
});
</script>
</body></html>`;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  routes: {
    "/": new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }),
    // the app's own routes sit beside the model's
    "/about": Response.json({ app: "kiln example", model: model.name }),
  },
  fetch: api.fetch, // everything else: /v1/*, /health, /metrics
});
console.log(`chat page on http://${server.hostname}:${server.port}/ (API under /v1)`);
