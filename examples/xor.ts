// A two-layer MLP learns XOR: kiln's public API the way a script uses it.
// Run: bun examples/xor.ts [wasm|webgpu|auto]
import * as kiln from "../src/index.ts";

const backend = await kiln.init(process.argv[2] ?? "wasm", { seed: 0 });
console.log(`backend: ${backend.name} (${backend.device})`);

class MLP extends kiln.Module {
  fc1 = this.module("fc1", new kiln.Linear(2, 8, { std: 1 }));
  fc2 = this.module("fc2", new kiln.Linear(8, 1, { std: 1 }));
  forward(x: kiln.Tensor): kiln.Tensor {
    return this.fc2.forward(this.fc1.forward(x).tanh()); // [N, 1]
  }
}

const model = new MLP();
const x = kiln.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]);
const y = kiln.tensor([[0], [1], [1], [0]]);
const opt = new kiln.AdamW(model.parameters(), { lr: 0.05, weightDecay: 0 });

for (let step = 1; step <= 300; step++) {
  const loss = kiln.scope(() => {
    const diff = model.forward(x).sub(y);
    const loss = diff.mul(diff).mean(); // mean squared error
    loss.backward();
    opt.step();
    opt.zeroGrad();
    return loss;
  });
  if (step % 100 === 0) console.log(`step ${step}: loss ${(await loss.item()).toFixed(5)}`);
  loss.dispose();
}

const pred = kiln.noGrad(() => model.forward(x));
console.log("predictions:", Array.from(await pred.data(), (v) => v.toFixed(3)).join(" "));
backend.dispose();
