/**
 * Extension points keyed by the names users type in config, as verl's `register_adv_est` /
 * `register_policy_loss` (verl/trainer/ppo/core_algos.py): what is registered under a name is found by that
 * name, an unknown name is an error listing the known ones, and a name registered twice is refused.
 *
 * Config schemas check names with `registry.name()`, which looks the name up when a config is parsed, not
 * when the schema is built: a module of the user's that registers an estimator only has to be imported
 * before the config is parsed (`papo --import ./my_algos.ts train ...`).
 *
 * @example
 * const estimators = new Registry<Estimator>('advantage estimator', 'registerAdvEstimator');
 * estimators.register('grpo', grpo);
 * estimators.get('grpo');   // grpo
 * estimators.get('ppo');    // Error: unknown advantage estimator "ppo"; known: grpo (add one with registerAdvEstimator)
 */
import { z } from 'zod';
import { extensionBeingImported } from './user-module.ts';

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export class Registry<V> {
  private readonly entries = new Map<string, V>();
  /** other spellings -> registered name */
  private readonly aliases = new Map<string, string>();
  /** name -> the extension module (`--import`) that registered it */
  private readonly origins = new Map<string, string>();

  /**
   * `kind` names what is registered, in messages; `registerWith` names the function users call to add one;
   * `check` says what is wrong with a value (undefined: nothing).
   */
  constructor(
    readonly kind: string,
    private readonly registerWith: string,
    private readonly check: (value: V) => string | undefined = (v) => (typeof v === 'function' ? undefined : `must be a function, got ${typeof v}`),
  ) {}

  /** Adds `value` under `name`; a name (or alias) already taken is refused. */
  register(name: string, value: V): void {
    this.checkFreeName(name);
    const problem = this.check(value);
    if (problem) throw new Error(`${this.kind} "${name}": ${problem}`);
    this.entries.set(name, value);
    const from = extensionBeingImported();
    if (from !== undefined) this.origins.set(name, from);
  }

  /** The absolute path of the extension module (`--import`) that registered `name`; undefined for others. */
  origin(name: string): string | undefined {
    const key = this.resolve(name);
    return key === undefined ? undefined : this.origins.get(key);
  }

  /** Another spelling of a registered name (verl's `low_var_kl` for `k3`); configs store the name itself. */
  alias(alias: string, name: string): void {
    this.checkFreeName(alias);
    if (!this.entries.has(name)) throw new Error(this.unknown(name));
    this.aliases.set(alias, name);
  }

  /** The registered name that `name` is or spells, else undefined. */
  resolve(name: string): string | undefined {
    return this.entries.has(name) ? name : this.aliases.get(name);
  }

  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }

  /** What is registered under `name` (or an alias of it); an unknown name is an error listing the known ones. */
  get(name: string): V {
    const key = this.resolve(name);
    if (key === undefined) throw new Error(this.unknown(name));
    return this.entries.get(key) as V;
  }

  /** Registered names, in registration order (aliases not included). */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** `unknown <kind> "<name>"; known: a, b (also c) (add one with registerX)`. */
  unknown(name: unknown): string {
    const also = this.aliases.size ? ` (also ${[...this.aliases.keys()].join(', ')})` : '';
    return `unknown ${this.kind} ${JSON.stringify(name)}; known: ${this.names().join(', ')}${also} (add one with ${this.registerWith})`;
  }

  /**
   * A zod schema of a registered name: checked against the registry when a config is parsed (so names
   * registered after the schema was built count), aliases replaced by the name they spell.
   */
  name() {
    return z.string().transform((value, ctx) => {
      const key = this.resolve(value);
      if (key !== undefined) return key;
      ctx.addIssue({ code: 'custom', message: this.unknown(value) });
      return z.NEVER;
    });
  }

  private checkFreeName(name: string): void {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new Error(`${this.kind} name ${JSON.stringify(name)} must be letters, digits, '_' and '-', starting with a letter or '_'`);
    }
    if (this.entries.has(name) || this.aliases.has(name)) throw new Error(`${this.kind} "${name}" is already registered; choose another name`);
  }
}
