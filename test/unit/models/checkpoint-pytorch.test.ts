import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwleryError } from '../../../src-shared/errors.ts';
import { float32ToRaw, rawToFloat32, roundThrough } from '../../../models/checkpoint/dtype.ts';
import { openFile } from '../../../models/checkpoint/io.ts';
import { restrictedUnpickle } from '../../../models/checkpoint/pickle.ts';
import { PytorchFile } from '../../../models/checkpoint/pytorch.ts';
import {
  encodeCallPickle, PickleWriter, writePytorchFile, writeRawPickleCheckpoint, writeTorchZip,
} from '../../../models/checkpoint/write-pytorch.ts';
import type { WritableTensor } from '../../../models/checkpoint/write-pytorch.ts';
import { ZipArchive } from '../../../models/checkpoint/zip.ts';

const FIXTURE_BIN = fileURLToPath(new URL('../../fixtures/owl2-public/checkpoint/pytorch_model.bin', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'owlery-pt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function expectOwleryError(p: Promise<unknown>, code: string, ...parts: string[]): Promise<OwleryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${code}`).toBeInstanceOf(OwleryError);
  const e = err as OwleryError;
  expect(e.code, e.message).toBe(code);
  for (const part of parts) expect(e.message).toContain(part);
  return e;
}

function sampleTensors(dtype: 'F32' | 'F16' | 'BF16'): { tensors: WritableTensor[]; values: Map<string, Float32Array> } {
  const values = new Map<string, Float32Array>();
  const tensors: WritableTensor[] = [];
  const shapes: [string, number[]][] = [['w', [3, 5]], ['b', [5]], ['scalar', []], ['cube', [2, 2, 2, 2]], ['empty', [0]], ['big', [300, 300]]];
  let k = 1;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * 3.3 + i * 1e-3);
    k++;
    values.set(name, roundThrough(v, dtype));
    tensors.push({ name, dtype, shape, data: float32ToRaw(v, dtype) });
  }
  return { tensors, values };
}

describe('torch.save zip writer and reader', () => {
  it('re-encodes the fixture data.pkl byte for byte (the writer pickles exactly like torch)', async () => {
    const original = await PytorchFile.open(FIXTURE_BIN);
    const tensors: WritableTensor[] = [];
    try {
      for (const [name, info] of original.tensors) tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await original.readRaw(name) });
    } finally {
      await original.close();
    }
    const path = join(dir, 'pytorch_model.bin');
    await writePytorchFile(path, tensors);
    const ours = await ZipArchive.open(await openFile(path));
    const theirs = await ZipArchive.open(await openFile(FIXTURE_BIN));
    try {
      expect(Buffer.from(await ours.read('pytorch_model/data.pkl'))).toEqual(Buffer.from(await theirs.read('pytorch_model/data.pkl')));
      expect(Buffer.from(await ours.read('pytorch_model/version'))).toEqual(Buffer.from(await theirs.read('pytorch_model/version')));
    } finally {
      await ours.file.handle.close();
      await theirs.file.handle.close();
    }
  });

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    for (const variant of ['plain', 'zip64', 'deflate'] as const) {
      it(`round trips ${dtype} tensors (${variant})`, async () => {
        const { tensors, values } = sampleTensors(dtype);
        const path = join(dir, `rt-${dtype}-${variant}.bin`);
        await writePytorchFile(path, tensors, { zip64: variant === 'zip64', deflate: variant === 'deflate' });
        const f = await PytorchFile.open(path);
        try {
          expect([...f.tensors.keys()]).toEqual(tensors.map((t) => t.name));
          for (const t of tensors) {
            expect(f.tensors.get(t.name)).toMatchObject({ dtype, shape: t.shape, byteLength: t.data.length });
            const raw = await f.readRaw(t.name);
            expect(Buffer.compare(Buffer.from(raw), Buffer.from(t.data)), t.name).toBe(0);
            expect(rawToFloat32(raw, dtype)).toEqual(values.get(t.name));
          }
        } finally {
          await f.close();
        }
      });
    }
  }

  it('reads tensors at a storage offset (a view into a shared storage)', async () => {
    const storage = Float32Array.from({ length: 10 }, (_, i) => i);
    const w = new PickleWriter().proto(2).raw(0x7d).put().raw(0x28);
    for (const [name, off, shape] of [['first', 0, [2, 2]], ['tail', 6, [4]]] as const) {
      w.str(name).global('torch._utils', '_rebuild_tensor_v2').raw(0x28);
      w.raw(0x28).str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(10).raw(0x74).raw(0x51);
      w.int(off).intTuple(shape).intTuple(shape.length === 2 ? [2, 1] : [1]).raw(0x89);
      w.global('collections', 'OrderedDict').raw(0x29, 0x52).raw(0x74, 0x52);
    }
    w.raw(0x75, 0x2e);
    const path = join(dir, 'views.bin');
    await writeRawPickleCheckpoint(path, w.bytes(), [{ name: 'data/0', data: float32ToRaw(storage, 'F32') }]);
    const f = await PytorchFile.open(path);
    try {
      expect(Array.from(new Float32Array((await f.readRaw('tail')).buffer))).toEqual([6, 7, 8, 9]);
      expect(Array.from(new Float32Array((await f.readRaw('first')).buffer))).toEqual([0, 1, 2, 3]);
    } finally {
      await f.close();
    }
  });
});

describe('hostile pickles are refused without running anything', () => {
  const cases: { what: string; pickle: (marker: string) => Uint8Array; global: string }[] = [
    { what: 'os.system via GLOBAL + REDUCE', global: 'os.system', pickle: (m) => encodeCallPickle('os', 'system', [`touch ${m}`]) },
    { what: 'posix.system', global: 'posix.system', pickle: (m) => encodeCallPickle('posix', 'system', [`touch ${m}`]) },
    { what: 'builtins.eval via STACK_GLOBAL', global: 'builtins.eval', pickle: (m) => encodeCallPickle('builtins', 'eval', [`open(${JSON.stringify(m)}, "w")`], { stackGlobal: true }) },
    { what: 'subprocess.Popen', global: 'subprocess.Popen', pickle: (m) => encodeCallPickle('subprocess', 'Popen', ['touch', m]) },
    { what: 'os.system via INST', global: 'os.system', pickle: (m) => new PickleWriter().proto(2).raw(0x28).str(`touch ${m}`).raw(0x69, ...new TextEncoder().encode('os\nsystem\n'), 0x2e).bytes() },
  ];
  for (const c of cases) {
    it(`${c.what}: CHECKPOINT_UNSAFE naming ${c.global}, and no side effect`, async () => {
      const marker = join(tmpdir(), `owned-${randomBytes(8).toString('hex')}`);
      const path = join(dir, `evil-${c.global}.bin`);
      await writeRawPickleCheckpoint(path, c.pickle(marker));
      const e = await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_UNSAFE', c.global, path);
      expect(e.details?.global).toBe(c.global);
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('an allowed class called as a function (torch.FloatStorage(...)) is refused', () => {
    const p = new PickleWriter().proto(2).global('torch', 'FloatStorage').str('x').raw(0x85, 0x52, 0x2e).bytes();
    const err = (() => {
      try {
        restrictedUnpickle(p, 'x.bin');
        return undefined;
      } catch (e) {
        return e as OwleryError;
      }
    })();
    expect(err?.code).toBe('CHECKPOINT_UNSAFE');
    expect(err?.message).toContain('torch.FloatStorage');
  });

  it('unknown opcodes are refused by name', async () => {
    for (const [op, name] of [[0x81, 'NEWOBJ'], [0x82, 'EXT1'], [0x50, 'PERSID'], [0x92, 'NEWOBJ_EX'], [0xf0, '0xf0']] as const) {
      const path = join(dir, `op-${op}.bin`);
      await writeRawPickleCheckpoint(path, new PickleWriter().proto(2).raw(0x7d, op, 0x2e).bytes());
      const e = await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_UNSAFE', name, path);
      expect(e.details?.opcode).toBe(name);
    }
  });
});

describe('damaged .bin files give specific errors', () => {
  async function tinyBin(name: string): Promise<string> {
    const path = join(dir, name);
    await writePytorchFile(path, sampleTensors('F16').tensors);
    return path;
  }

  it('a file cut in half', async () => {
    const path = await tinyBin('half.bin');
    await truncate(path, Math.floor((await readFile(path)).length / 2));
    await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_INVALID', path, 'truncated');
  });

  it('a corrupted data.pkl (CRC mismatch)', async () => {
    const path = await tinyBin('crc.bin');
    const b = await readFile(path);
    const at = b.indexOf(Buffer.from('_rebuild_tensor_v2'));
    b[at] ^= 0xff;
    await writeFile(path, b);
    await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_INVALID', 'CRC-32 mismatch', 'data.pkl');
  });

  it('a damaged central directory', async () => {
    const path = await tinyBin('cd.bin');
    const b = await readFile(path);
    const at = b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    b[at + 2] = 0x77;
    await writeFile(path, b);
    await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_INVALID', 'corrupt zip', 'central directory entry');
  });

  it('a storage entry missing from the zip', async () => {
    const { tensors } = sampleTensors('F32');
    const path = join(dir, 'nostorage.bin');
    const pickle = (await (async () => {
      const full = join(dir, 'full.bin');
      await writePytorchFile(full, tensors);
      const z = await ZipArchive.open(await openFile(full));
      try {
        return await z.read('full/data.pkl');
      } finally {
        await z.file.handle.close();
      }
    })());
    await writeRawPickleCheckpoint(path, pickle, [{ name: 'data/0', data: tensors[0].data }]);
    await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_INVALID', '"b"', 'nostorage/data/1', 'missing');
  });

  it('a storage whose size disagrees with the pickle', async () => {
    const w = new PickleWriter().proto(2).raw(0x7d).put().str('w').global('torch._utils', '_rebuild_tensor_v2').raw(0x28);
    w.raw(0x28).str('storage').global('torch', 'HalfStorage').str('0').str('cpu').int(8).raw(0x74, 0x51);
    w.int(0).intTuple([8]).intTuple([1]).raw(0x89).global('collections', 'OrderedDict').raw(0x29, 0x52, 0x74, 0x52, 0x73, 0x2e);
    const path = join(dir, 'size.bin');
    await writeRawPickleCheckpoint(path, w.bytes(), [{ name: 'data/0', data: new Uint8Array(10) }]);
    await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_INVALID', '"w"', 'holds 10 bytes', '8 × F16 = 16 bytes');
  });

  it('a non-contiguous tensor is refused clearly', async () => {
    const w = new PickleWriter().proto(2).raw(0x7d).put().str('t').global('torch._utils', '_rebuild_tensor_v2').raw(0x28);
    w.raw(0x28).str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(6).raw(0x74, 0x51);
    w.int(0).intTuple([2, 3]).intTuple([1, 2]).raw(0x89).global('collections', 'OrderedDict').raw(0x29, 0x52, 0x74, 0x52, 0x73, 0x2e);
    const path = join(dir, 'strided.bin');
    await writeRawPickleCheckpoint(path, w.bytes(), [{ name: 'data/0', data: new Uint8Array(24) }]);
    await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_UNSUPPORTED', '"t"', 'not contiguous', 'stride [1, 2]');
  });

  it('a legacy (non-zip) torch.save file and a file that is not a checkpoint', async () => {
    const legacy = join(dir, 'legacy.bin');
    await writeFile(legacy, new PickleWriter().proto(2).int(1).raw(0x2e).bytes());
    await expectOwleryError(PytorchFile.open(legacy), 'CHECKPOINT_UNSUPPORTED', 'legacy');
    const junk = join(dir, 'junk.bin');
    await writeFile(junk, 'hello world, not a zip');
    await expectOwleryError(PytorchFile.open(junk), 'CHECKPOINT_INVALID', 'not a PyTorch zip');
  });

  it('a zip without data.pkl', async () => {
    const path = join(dir, 'nopkl.bin');
    await writeTorchZip(path, [{ name: 'nopkl/version', data: new TextEncoder().encode('3\n') }]);
    await expectOwleryError(PytorchFile.open(path), 'CHECKPOINT_INVALID', 'data.pkl');
  });
});
