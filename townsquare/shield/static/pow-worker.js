// Townsquare proof-of-work solver, run as a Web Worker so the page stays responsive.
//
//   const worker = new Worker("/shield/pow-worker.js");
//   worker.postMessage({challenge, difficulty});   // from GET /api/v1/shield/challenge
//   worker.onmessage = (e) => { /* e.data: {nonce, hashes} or {error} */ };
//
// A nonce solves the challenge when SHA-256(challenge + nonce), over the UTF-8 bytes, starts
// with `difficulty` zero bits. POST {challenge, nonce} to /api/v1/shield/pass for a pass.

"use strict";

const encoder = new TextEncoder();

function leadingZeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

async function solve(challenge, difficulty) {
  // Several digests in flight at once keep the (asynchronous) WebCrypto busy.
  const batch = 64;
  for (let base = 0; ; base += batch) {
    const work = [];
    for (let i = 0; i < batch; i++) {
      const nonce = String(base + i);
      work.push(
        crypto.subtle
          .digest("SHA-256", encoder.encode(challenge + nonce))
          .then((digest) => [nonce, new Uint8Array(digest)]),
      );
    }
    for (const [nonce, digest] of await Promise.all(work)) {
      if (leadingZeroBits(digest) >= difficulty) {
        return { nonce, hashes: base + batch };
      }
    }
  }
}

self.onmessage = async (event) => {
  const { challenge, difficulty } = event.data || {};
  if (typeof challenge !== "string" || !Number.isInteger(difficulty)) {
    self.postMessage({ error: "expected {challenge: string, difficulty: integer}" });
    return;
  }
  try {
    self.postMessage(await solve(challenge, difficulty));
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};
