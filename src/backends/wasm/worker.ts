// Pool worker: instantiates the kernel module once per arena (all on shared memories) and runs its share
// (tid) of every job published in the control block. Spins for spinMicros after a job, then sleeps in
// Atomics.wait (waking a sleeping vCPU costs 20-170 us on the target VM, spinning costs ~2 us).
// Runs as a worker_threads worker under Node and as a module Web Worker in browsers.
// (V8 flags are per process: the main thread set them before compiling the module this worker gets.)
import { isNode } from './platform.js';
import {
  CTL_ARENA, CTL_ARGS_BYTE_OFFSET, CTL_DONE, CTL_ERROR, CTL_FN, CTL_GEN, CTL_MAX_ARGS, CTL_NARGS, CTL_SLEEPERS,
  FN_EXIT, FN_YIELD, KERNEL_NAMES, type WorkerMessage,
} from './protocol.js';

type Fn = (...args: number[]) => unknown;

interface Port {
  post(m: unknown): void;
  listen(cb: (m: WorkerMessage) => void): void;
  exit(): void;
}
async function nodePort(): Promise<Port> {
  // (parentPort queues messages until a listener is attached)
  const { parentPort } = await import('node:worker_threads');
  return {
    post: (m) => parentPort!.postMessage(m),
    listen: (cb) => void parentPort!.on('message', cb),
    exit: () => process.exit(0),
  };
}
function webPort(): Port {
  const scope = globalThis as unknown as {
    postMessage(m: unknown): void; addEventListener(t: string, f: (e: { data: WorkerMessage }) => void): void; close(): void;
  };
  return { post: (m) => scope.postMessage(m), listen: (cb) => scope.addEventListener('message', (e) => cb(e.data)), exit: () => scope.close() };
}
// In a browser the listener is attached synchronously, while the module is first evaluated.
const port: Port = isNode ? await nodePort() : webPort();
/** Back to the host's event loop (to receive messages), then f. */
const later = (f: () => void): void => void (typeof setImmediate === 'function' ? setImmediate(f) : setTimeout(f, 0));

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
      port.exit();
      return;
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

port.listen((m: WorkerMessage) => {
  if (m.type === 'init') {
    ctl = new Int32Array(m.ctl, 0, CTL_ARGS_BYTE_OFFSET / 4);
    args = new Float64Array(m.ctl, CTL_ARGS_BYTE_OFFSET, CTL_MAX_ARGS);
    tid = m.tid;
    nth = m.nth;
    spinMicros = m.spinMicros;
    module = m.module;
    for (const mem of m.memories) tables.push(instantiate(mem));
    lastGen = Atomics.load(ctl, CTL_GEN);
    port.post({ type: 'ready' });
    later(loop);
  } else if (m.type === 'arena') {
    tables[m.id] = instantiate(m.memory);
    port.post({ type: 'arena-ok', id: m.id });
  } else if (m.type === 'resume') {
    later(loop);
  }
});
