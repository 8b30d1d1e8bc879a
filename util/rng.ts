/**
 * Seeded random numbers whose whole state can be saved and restored.
 *
 * Every random choice in papo-stream (data order, masks, sampling, initialisation) draws from an `Rng`,
 * so a checkpoint that stores `rng.state()` lets a resumed or replayed run reproduce the original.
 * The generator is xoroshiro128+ from `pure-rand`.
 */
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

/** Serialisable generator state: four 32-bit integers. */
export type RngState = readonly number[];

export class Rng {
  private gen: JumpableRandomGenerator;

  private constructor(gen: JumpableRandomGenerator) {
    this.gen = gen;
  }

  /** A generator seeded with an integer. */
  static seeded(seed: number): Rng {
    if (!Number.isSafeInteger(seed)) throw new Error(`Rng seed must be a safe integer, got ${seed}`);
    // Nearby seeds give correlated first outputs when fed to xoroshiro directly, so the four state words
    // come from splitmix32 over the seed instead.
    let x = ((seed | 0) ^ Math.imul(Math.floor(seed / 2 ** 32) | 0, 0x9e3779b1)) >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      words.push((z ^ (z >>> 16)) | 0);
    }
    if (!words.some(Boolean)) words[0] = 1; // the all-zero state is a fixed point
    return new Rng(xoroshiro128plusFromState(words));
  }

  /** A generator continuing exactly from a saved `state()`. */
  static fromState(state: RngState): Rng {
    if (!Array.isArray(state) || state.length !== 4 || !state.every(Number.isInteger)) {
      throw new Error(`Rng state must be four integers, got ${JSON.stringify(state)}`);
    }
    return new Rng(xoroshiro128plusFromState(state));
  }

  /**
   * A generator derived from a seed and a label: independent streams for independent purposes
   * (e.g. `Rng.derive(seed, 'mask', step)`), stable regardless of how much other streams consume.
   */
  static derive(seed: number, ...labels: (string | number)[]): Rng {
    return Rng.seeded(mixSeed(seed, labels.join('/')));
  }

  state(): RngState {
    return [...this.gen.getState()];
  }

  clone(): Rng {
    return Rng.fromState(this.state());
  }

  /** Uniform in [0, 1), 53 random bits. */
  float(): number {
    return uniformFloat64(this.gen);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`Rng.int needs a positive integer, got ${n}`);
    return Math.floor(this.float() * n);
  }

  /** A fresh 31-bit seed, for seeding another generator or an engine that takes an integer seed. */
  nextSeed(): number {
    return this.gen.next() >>> 1;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float());
  }

  /** In-place Fisher-Yates shuffle; returns the array. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i];
      xs[i] = xs[j];
      xs[j] = t;
    }
    return xs;
  }
}

/** FNV-1a over the label, folded with the seed: a stable 32-bit seed for a named sub-stream. */
export function mixSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ (seed | 0) ^ Math.floor(seed / 2 ** 32)) | 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
