/**
 * TensorFlow.js, the tensor library of the objective (algorithms/) and the trainer (models/), and the choice
 * of its backend. It sits in util/ so that the math and the model share it without depending on each other.
 *
 * Order of preference: `tensorflow` (native, from the optional `@tensorflow/tfjs-node-gpu`, present only
 * where its install could fetch libtensorflow), then `wasm` (SIMD, one thread under Node), then the pure-JS
 * `cpu` backend. `PAPO_TF_BACKEND` (or the `backend` argument) forces one; forcing a backend that cannot
 * load is an error rather than a silent fallback.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle has no gradient definitions: this registers them (into this same tfjs-core
// instance), generated from tfjs-core's own by scripts/tf-gradients.ts.
import './tf-gradients.generated.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

const require = createRequire(import.meta.url);

let active: Promise<BackendName> | undefined;
let activeRequest: string | undefined;
let activeWhy: string | undefined;

/** Why the backend in use is the one (`wasm: tensorflow skipped: tfjs-node-gpu is not installed ...`); undefined before `initTf`. */
export function tfBackendReason(): string | undefined {
  return activeWhy;
}

async function tryBackend(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') {
      // The native package registers the 'tensorflow' backend on import. It bundles its own copy of
      // tfjs-core only when versions differ, so check that the backend landed in *our* registry.
      try {
        await import('@tensorflow/tfjs-node-gpu' as string);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
          return 'tfjs-node-gpu is not installed (an optional dependency: its install fetches libtensorflow from outside the npm registry)';
        throw err;
      }
      if (!tf.findBackendFactory('tensorflow')) return 'tfjs-node-gpu loaded but registered no backend in this tfjs-core';
    } else if (name === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
      wasm.setWasmPaths(path.join(dir, 'dist') + path.sep);
    }
    if (!(await tf.setBackend(name))) return `tf.setBackend('${name}') returned false`;
    await tf.ready();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message.split('\n')[0] : String(err);
  }
}

/**
 * Selects and initialises the backend once per process; later calls return the same choice.
 * `requested` is 'auto' (default), or a backend name; the env var PAPO_TF_BACKEND overrides 'auto'.
 */
export function initTf(requested: string = process.env.PAPO_TF_BACKEND ?? 'auto', log: (msg: string) => void = () => {}): Promise<BackendName> {
  if (active) {
    if (requested !== 'auto' && activeRequest !== requested) {
      return active.then((got) => {
        if (got !== requested) throw new Error(`TensorFlow.js backend is already '${got}'; cannot switch to '${requested}'`);
        return got;
      });
    }
    return active;
  }
  activeRequest = requested;
  active = (async () => {
    if (requested !== 'auto' && !BACKENDS.includes(requested as BackendName)) {
      throw new Error(`Unknown TensorFlow.js backend '${requested}' (PAPO_TF_BACKEND / backend): use auto, ${BACKENDS.join(', ')}`);
    }
    const order = requested === 'auto' ? BACKENDS : [requested as BackendName];
    const failures: string[] = [];
    for (const name of order) {
      const why = await tryBackend(name);
      if (why === undefined) {
        activeWhy =
          requested !== 'auto'
            ? `${name}: asked for (PAPO_TF_BACKEND or the backend argument)`
            : `${name}${failures.length ? `: ${failures.join('; ')}` : ': the first choice'}`;
        log(`TensorFlow.js backend: ${name}${failures.length ? ` (skipped: ${failures.join('; ')})` : ''}`);
        return name;
      }
      failures.push(`${name}: ${why}`);
    }
    throw new Error(`No TensorFlow.js backend could start: ${failures.join('; ')}`);
  })();
  active.catch(() => {
    active = undefined;
  });
  return active;
}

export { tf };
