// Pool worker: instantiates the kernel module once per arena (all on shared memories) and runs its share
// (tid) of every job published in the control block. Spins for spinMicros after a job, then sleeps in
// Atomics.wait (waking a sleeping vCPU costs 20-170 us on the target VM, spinning costs ~2 us).
import { parentPort } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import {
  CTL_ARENA, CTL_ARGS_BYTE_OFFSET, CTL_DONE, CTL_ERROR, CTL_FN, CTL_GEN, CTL_MAX_ARGS, CTL_NARGS, CTL_SLEEPERS,
  FN_EXIT, FN_YIELD, KERNEL_NAMES, type WorkerMessage,
} from './protocol.js';

type Fn = (...args: number[]) => unknown;

let ctl: Int32Array;
let args: Float64Array;
let tid = 0;
let nth = 1;
let spinMicros = 0;
let module: WebAssembly.Module;
const tables: Fn[][] = [];
let lastGen = 0;

function instantiate(memory: WebAssembly.Memory): Fn[] {
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  const ex = inst.exports as Record<string, Fn>;
  return KERNEL_NAMES.map((n) => ex[n]!);
}

function loop(): void {
  const a: number[] = [];
  for (;;) {
    // wait for a new generation: spin first, then sleep
    let g = Atomics.load(ctl, CTL_GEN);
    if (g === lastGen) {
      const t0 = performance.now();
      let i = 0;
      while ((g = Atomics.load(ctl, CTL_GEN)) === lastGen) {
        if ((++i & 255) === 0 && performance.now() - t0 > spinMicros / 1000) break;
      }
      while (g === lastGen) {
        Atomics.add(ctl, CTL_SLEEPERS, 1);
        Atomics.wait(ctl, CTL_GEN, lastGen);
        Atomics.sub(ctl, CTL_SLEEPERS, 1);
        g = Atomics.load(ctl, CTL_GEN);
      }
    }
    lastGen = g;
    const fn = Atomics.load(ctl, CTL_FN);
    if (fn === FN_EXIT) {
      Atomics.add(ctl, CTL_DONE, 1);
      process.exit(0);
    }
    if (fn === FN_YIELD) {
      Atomics.add(ctl, CTL_DONE, 1);
      return; // back to the event loop; a 'resume' message restarts the loop
    }
    try {
      const n = Atomics.load(ctl, CTL_NARGS);
      a.length = n + 2;
      for (let i = 0; i < n; i++) a[i] = args[i]!;
      a[n] = tid;
      a[n + 1] = nth;
      tables[Atomics.load(ctl, CTL_ARENA)]![fn]!(...a);
    } catch (e) {
      Atomics.store(ctl, CTL_ERROR, 1);
      console.error('wasm pool worker', tid, e);
    }
    Atomics.add(ctl, CTL_DONE, 1);
  }
}

parentPort!.on('message', (m: WorkerMessage) => {
  if (m.type === 'init') {
    if (m.relaxed) setFlagsFromString('--experimental-wasm-relaxed-simd');
    ctl = new Int32Array(m.ctl, 0, CTL_ARGS_BYTE_OFFSET / 4);
    args = new Float64Array(m.ctl, CTL_ARGS_BYTE_OFFSET, CTL_MAX_ARGS);
    tid = m.tid;
    nth = m.nth;
    spinMicros = m.spinMicros;
    module = m.module;
    for (const mem of m.memories) tables.push(instantiate(mem));
    lastGen = Atomics.load(ctl, CTL_GEN);
    parentPort!.postMessage({ type: 'ready' });
    setImmediate(loop);
  } else if (m.type === 'arena') {
    tables[m.id] = instantiate(m.memory);
    parentPort!.postMessage({ type: 'arena-ok', id: m.id });
  } else if (m.type === 'resume') {
    setImmediate(loop);
  }
});
