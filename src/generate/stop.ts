/**
 * Stop strings over streamed text. Text that could still be the start of a
 * stop string is held back, so a client never sees part of a stop string
 * that the next token completes.
 */
export class StopMatcher {
  #pending = "";

  constructor(private readonly stops: readonly string[]) {}

  /**
   * Adds a piece of generated text. Returns the text safe to emit now and
   * whether a stop string was found (the text before it is emitted; the
   * stop string and anything after it are dropped).
   */
  push(piece: string): { text: string; stopped: boolean } {
    const text = this.#pending + piece;
    let cut = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.#pending = "";
      return { text: text.slice(0, cut), stopped: true };
    }
    // Hold back the longest suffix that is a proper prefix of a stop string.
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
        if (text.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    this.#pending = text.slice(text.length - hold);
    return { text: text.slice(0, text.length - hold), stopped: false };
  }

  /** Whatever is held back, at the end of generation. */
  flush(): string {
    const rest = this.#pending;
    this.#pending = "";
    return rest;
  }
}
