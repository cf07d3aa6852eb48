// Per-op wall-clock timers around a backend (for docs/PERFORMANCE.md's "what bounds it" tables):
// wraps every method of the backend contract, and splits `linear` by weight shape.
import type { Backend, Tensor, Weight } from "../tensor/backend.js";

export interface OpTimes {
  [op: string]: { calls: number; ms: number };
}

export function profileBackend<B extends Backend>(b: B): { backend: B; times: OpTimes; reset(): void } {
  const times: OpTimes = {};
  const ops = ["linear", "rmsNorm", "layerNorm", "add", "addInPlace", "geluTanh", "geluErf", "siluMul", "rope", "attention",
    "gatherWeighted", "scatterRows", "scatterAddRows", "moe", "argmaxRows", "embed", "kvWrite", "kvRead", "toArray", "fromArray"] as const;
  const target = b as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const op of ops) {
    const orig = target[op]!.bind(b);
    target[op] = (...args: unknown[]) => {
      const t = performance.now();
      const r = orig(...args);
      let key: string = op;
      if (op === "linear") {
        const x = args[0] as Tensor, w = args[1] as Weight;
        const M = x.shape.length > 1 ? x.shape.slice(0, -1).reduce((p, q) => p * q, 1) : 1;
        key = `linear ${M <= 4 ? "gemv" : "gemm"} ${w.format} [${w.shape.join("x")}]`;
      }
      const e = (times[key] ??= { calls: 0, ms: 0 });
      e.calls++;
      e.ms += performance.now() - t;
      return r;
    };
  }
  return { backend: b, times, reset: () => { for (const k of Object.keys(times)) delete times[k]; } };
}

export function formatTimes(times: OpTimes, total?: number): string {
  const rows = Object.entries(times).sort((a, b) => b[1].ms - a[1].ms);
  const sum = total ?? rows.reduce((s, [, v]) => s + v.ms, 0);
  return rows.map(([k, v]) => `${v.ms.toFixed(1).padStart(10)} ms ${(100 * v.ms / sum).toFixed(1).padStart(5)}%  ${String(v.calls).padStart(6)}x  ${k}`).join("\n");
}
