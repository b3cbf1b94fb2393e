/**
 * WebGPU for the tests of the GPU path. Machines without a GPU run it on Mesa's software Vulkan
 * (lavapipe, `mesa-vulkan-drivers` 25 from Debian bookworm-backports; `.ci/run` installs it).
 * Without a WebGPU adapter those tests are skipped with the reason, except when
 * `OWLERY_TEST_WEBGPU=required` (set by `.ci/run`): then the missing adapter is a failure.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, it } from 'vitest';
import { DataType, encodeModel } from '../../models/onnx/proto.ts';

// Dawn wants a runtime folder (it prints errors without one); a desktop session has one.
process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'owlery-xdg-'));

/** Whether a missing WebGPU adapter fails the run instead of skipping the GPU tests. */
export const WEBGPU_REQUIRED = process.env.OWLERY_TEST_WEBGPU === 'required';

let probe: Promise<string | undefined> | undefined;

/** Why WebGPU cannot run here (one line), or undefined when a session on it runs. */
export function webgpuUnavailable(): Promise<string | undefined> {
  probe ??= (async () => {
    const model = encodeModel({
      irVersion: 8,
      opsets: [{ domain: '', version: 17 }],
      producerName: 'owlery-test',
      producerVersion: '1',
      graph: {
        name: 'probe',
        nodes: [{ opType: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
        initializers: [],
        inputs: [{ name: 'x', elemType: DataType.FLOAT, dims: [2] }],
        outputs: [{ name: 'y', elemType: DataType.FLOAT, dims: [2] }],
      },
    });
    try {
      const s = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 4 });
      const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
      await s.release();
      const y = out.y.data as Float32Array;
      return y[0] === 2 && y[1] === 4 ? undefined : `a WebGPU session computed ${Array.from(y).join(', ')} for 1+1, 2+2`;
    } catch (err) {
      return `no WebGPU adapter (${String((err as Error).message ?? err).split('\n')[0]}); on Debian bookworm install mesa-vulkan-drivers from bookworm-backports (see .ci/run)`;
    }
  })();
  return probe;
}

/**
 * `describe` for tests that need WebGPU: skipped with the reason when there is no adapter, or a
 * failing test in its place when `OWLERY_TEST_WEBGPU=required`.
 */
export async function describeWebGpu(name: string, body: () => void): Promise<void> {
  const why = await webgpuUnavailable();
  if (why && WEBGPU_REQUIRED) {
    describe(name, () => it('has a WebGPU adapter (OWLERY_TEST_WEBGPU=required)', () => { throw new Error(why); }));
    return;
  }
  if (why) console.warn(`skipping "${name}": ${why}`);
  describe.skipIf(why !== undefined)(name, body);
}
