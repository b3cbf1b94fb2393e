/**
 * The dispatch table: one typed handler per channel, and the one function every transport calls
 * (`dispatch(channel, payload, sender)`). It refuses unknown channels and senders that are not
 * the app's own page (`FORBIDDEN`), validates the payload against the contract's schema
 * (`INVALID_ARGUMENT`), runs the handler, and answers plain data: `{ ok: true, value }` or
 * `{ ok: false, error }`. The Electron wiring (`register.ts`) and the web harness use the same
 * table; only the transport differs.
 * @see style.md H2 (typed handlers, sender checked), H7 (errors as plain data)
 */
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import type { SerializedError } from '../../src-shared/errors.ts';
import { isChannelName, parseRequest } from '../../src-shared/ipc/index.ts';
import type { ChannelName, DomainChannel, DomainName, IpcResult, RequestOf, ResponseOf } from '../../src-shared/ipc/index.ts';

/** Who sent a request. */
export interface CallContext {
  /** URL of the sending frame (already checked by the dispatcher). */
  readonly senderUrl: string;
}

/** The handler of one channel: a validated request in, a response out (or an `OwleryError`). */
export type Handler<C extends ChannelName> = (request: RequestOf<C>, context: CallContext) => Promise<ResponseOf<C>> | ResponseOf<C>;

/** One handler per channel; the type makes a missing channel a compile error. */
export type HandlerTable = { readonly [C in ChannelName]: Handler<C> };

/** The handlers of every channel of some domains (what one module of `handlers/` provides). */
export type DomainHandlers<D extends DomainName> = Pick<HandlerTable, DomainChannel<D>>;

/** Options of {@link createDispatcher}. */
export interface DispatchOptions {
  /** True for the app's own page (see `trust.ts`); everything else is refused with `FORBIDDEN`. */
  isTrustedSender: (url: string) => boolean;
  /** Called with unexpected exceptions (bugs), before they are answered as `INTERNAL`. */
  onException?: (channel: string, err: unknown) => void;
  /** Keep stacks in error answers (development and tests only; default false). */
  includeStacks?: boolean;
}

/** The sender of a request, as the transport knows it. */
export interface SenderInfo {
  /** URL of the sending frame; `null` when unknown (a destroyed frame). */
  readonly url: string | null | undefined;
}

/** Validates, checks the sender, runs the handler; never throws. */
export type Dispatch = (channel: unknown, payload: unknown, sender: SenderInfo, extraArgs?: number) => Promise<IpcResult<unknown>>;

/** Builds the dispatch function over a handler table. */
export function createDispatcher(table: HandlerTable, opts: DispatchOptions): Dispatch {
  const fail = (error: SerializedError): IpcResult<never> => {
    if (!opts.includeStacks) delete error.stack;
    return { ok: false, error };
  };
  return async (channel, payload, sender, extraArgs = 0) => {
    try {
      if (!isChannelName(channel)) {
        throw new OwleryError('INVALID_ARGUMENT', `unknown channel ${JSON.stringify(String(channel)).slice(0, 80)}`);
      }
      const url = sender.url ?? '';
      if (!url || !opts.isTrustedSender(url)) {
        throw new OwleryError('FORBIDDEN', 'This request did not come from the Owlery window and was refused.', { channel });
      }
      if (extraArgs > 0) throw new OwleryError('INVALID_ARGUMENT', `${channel} takes one payload, got ${extraArgs + 1} arguments`);
      const request = parseRequest(channel, payload);
      const handler = table[channel] as Handler<ChannelName>;
      const value = await handler(request, { senderUrl: url });
      return { ok: true, value: value === undefined ? null : value };
    } catch (err) {
      if (err instanceof OwleryError) return fail(serializeError(err));
      opts.onException?.(String(channel), err);
      const e = serializeError(err);
      return fail({ name: 'Error', code: 'INTERNAL', message: `Something went wrong in Owlery: ${e.message}`, stack: e.stack });
    }
  };
}
