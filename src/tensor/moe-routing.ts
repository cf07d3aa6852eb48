// MoE routing shared by all backends: per token, softmax over every expert (the router runs
// in float32 in the reference, so probabilities are rounded to float32), the top-k experts
// (highest first, lowest index on ties, as torch.topk on CPU), optionally renormalised.

export interface Routing {
  /** [S·k] chosen experts, per token highest probability first. */
  experts: Int32Array;
  /** [S·k] their mixing weights. */
  weights: Float64Array;
}

export function routeTopK(logits: Float32Array, S: number, E: number, k: number, normalize: boolean): Routing {
  const experts = new Int32Array(S * k);
  const weights = new Float64Array(S * k);
  const probs = new Float64Array(E);
  for (let s = 0; s < S; s++) {
    let mx = -Infinity;
    for (let e = 0; e < E; e++) mx = Math.max(mx, logits[s * E + e]!);
    let sum = 0;
    for (let e = 0; e < E; e++) { probs[e] = Math.exp(logits[s * E + e]! - mx); sum += probs[e]!; }
    for (let e = 0; e < E; e++) probs[e] = Math.fround(probs[e]! / sum);
    let norm = 0;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) {
        if (probs[e]! < 0) continue; // taken
        if (best < 0 || probs[e]! > probs[best]!) best = e;
      }
      experts[s * k + j] = best;
      weights[s * k + j] = probs[best]!;
      norm += probs[best]!;
      probs[best] = -1;
    }
    if (normalize) for (let j = 0; j < k; j++) weights[s * k + j] = weights[s * k + j]! / norm;
  }
  return { experts, weights };
}
