/**
 * Conditions a test awaits on a server it started: each is checked when it is added and again
 * after every change the server reports, so a test waits for the event itself, not for a time.
 */
export class Waiters<T> {
  readonly #state: () => T;
  readonly #waiting = new Set<{ check: () => void }>();

  constructor(state: () => T) {
    this.#state = state;
  }

  /**
   * Resolves once `condition` holds (now, or after a later change). With `signal`, rejects when
   * it aborts first: tie it to the process under test, so a wait for something that process was
   * to do fails as soon as it has exited instead of hanging.
   */
  waitFor(condition: (state: T) => boolean, options: { signal?: AbortSignal } = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const { signal } = options;
      const entry = {
        check: () => {
          let met: boolean;
          try {
            met = condition(this.#state());
          } catch (error) {
            done();
            reject(error);
            return;
          }
          if (met) {
            done();
            resolve();
          }
        },
      };
      const aborted = () => {
        done();
        reject(signal?.reason ?? new Error('aborted'));
      };
      const done = () => {
        this.#waiting.delete(entry);
        signal?.removeEventListener('abort', aborted);
      };
      if (signal?.aborted) return aborted();
      signal?.addEventListener('abort', aborted, { once: true });
      this.#waiting.add(entry);
      entry.check();
    });
  }

  /** Re-checks every waiting condition: the server calls it after each change of its state. */
  notify(): void {
    for (const entry of [...this.#waiting]) entry.check();
  }
}
