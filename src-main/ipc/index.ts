/** The main-process side of IPC: dispatch table, handlers, sender check, Electron wiring. */
export { createDispatcher } from './dispatch.ts';
export type { CallContext, Dispatch, DispatchOptions, Handler, HandlerTable, SenderInfo } from './dispatch.ts';
export { createHandlers } from './handlers/index.ts';
export { forwardEvents, registerHandlers } from './register.ts';
export type { EventTargetLike, InvokeEventLike, IpcMainLike, RegisterOptions, Registration } from './register.ts';
export { createSenderCheck } from './trust.ts';
export type { SenderCheckOptions } from './trust.ts';
