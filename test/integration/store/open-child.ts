/**
 * Child process for the store tests: opens a database, optionally writes to it, and prints the
 * outcome as one JSON line. Run with `node --import tsx open-child.ts <db file> [write]`, possibly
 * as another user (read-only checks cannot be made as root, who may write anything).
 */
import { serializeError } from '../../../src-shared/errors.ts';
import { Store } from '../../../src-main/store/store.ts';

const [file, action] = process.argv.slice(2);
try {
  const { store } = Store.open(file, { busyTimeoutMs: 100 });
  if (action === 'write') store.createConversation({ title: 'from the child' });
  store.close();
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  const e = serializeError(err);
  console.log(JSON.stringify({ ok: false, code: e.code, message: e.message }));
}
