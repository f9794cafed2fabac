// Long inputs: never cut silently. A text longer than the model's maximum is split into overlapping
// windows, each framed by the model's own special tokens ([CLS] … [SEP], <s> … </s>), so every
// window looks like a normal input to the model.

export interface WindowPlan {
  /** Token positions of the whole encoding, per window, in order (special tokens included). */
  windows: Int32Array[];
  /**
   * For stitching token-level output: owner[t] = the window that supplies token t of the whole
   * encoding (the one where t has the most context on both sides), and its position in that window.
   */
  owner: Int32Array;
  ownerPosition: Int32Array;
  truncated: boolean;
}

/**
 * Plans windows over an encoding of `length` tokens whose first `prefix` and last `suffix` tokens are
 * special tokens added by the tokenizer. `overlap` tokens are shared by consecutive windows.
 */
export function planWindows(length: number, prefix: number, suffix: number, maxLength: number, overlap: number | undefined, truncate: boolean): WindowPlan {
  const all = (from: number, to: number) => Int32Array.from({ length: to - from }, (_, k) => from + k);
  if (length <= maxLength) {
    const positions = all(0, length);
    return { windows: [positions], owner: new Int32Array(length), ownerPosition: positions.slice(), truncated: false };
  }
  const contentLength = length - prefix - suffix;
  const width = maxLength - prefix - suffix;
  if (width < 1) throw new Error(`Model max length ${maxLength} leaves no room for text between special tokens.`);
  const frame = (start: number, end: number) => {
    const w = new Int32Array(prefix + (end - start) + suffix);
    for (let k = 0; k < prefix; k++) w[k] = k;
    for (let k = start; k < end; k++) w[prefix + k - start] = prefix + k;
    for (let k = 0; k < suffix; k++) w[prefix + end - start + k] = length - suffix + k;
    return w;
  };

  if (truncate) {
    const w = frame(0, width);
    const owner = new Int32Array(length).fill(-1);
    const ownerPosition = new Int32Array(length).fill(-1);
    w.forEach((t, p) => { owner[t] = 0; ownerPosition[t] = p; });
    return { windows: [w], owner, ownerPosition, truncated: true };
  }

  const shared = Math.min(Math.max(0, overlap ?? Math.floor(width / 4)), width - 1);
  const stride = width - shared;
  const starts: number[] = [];
  for (let s = 0; ; s += stride) {
    starts.push(s);
    if (s + width >= contentLength) break;
  }
  const windows = starts.map((s) => frame(s, Math.min(s + width, contentLength)));
  const owner = new Int32Array(length);
  const ownerPosition = new Int32Array(length);
  for (let k = 0; k < prefix; k++) { owner[k] = 0; ownerPosition[k] = k; }
  const last = windows.length - 1;
  for (let k = 0; k < suffix; k++) {
    owner[length - suffix + k] = last;
    ownerPosition[length - suffix + k] = windows[last].length - suffix + k;
  }
  for (let j = 0; j < contentLength; j++) {
    let best = -1;
    let bestMargin = -1;
    const firstCandidate = Math.max(0, Math.floor((j - width + 1) / stride));
    for (let w = firstCandidate; w < starts.length && starts[w] <= j; w++) {
      const end = Math.min(starts[w] + width, contentLength);
      if (j >= end) continue;
      const margin = Math.min(j - starts[w], end - 1 - j);
      if (margin > bestMargin) { best = w; bestMargin = margin; }
    }
    owner[prefix + j] = best;
    ownerPosition[prefix + j] = prefix + j - starts[best];
  }
  return { windows, owner, ownerPosition, truncated: false };
}

/** Leading and trailing special tokens of an encoding. */
export function specialFrame(special: Uint8Array): { prefix: number; suffix: number } {
  let prefix = 0;
  while (prefix < special.length && special[prefix]) prefix++;
  let suffix = 0;
  while (suffix < special.length - prefix && special[special.length - 1 - suffix]) suffix++;
  return { prefix, suffix };
}
