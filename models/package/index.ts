/**
 * Owlery model packages: manifest schema, reading with checksum verification, atomic writing.
 */
export { GPU_PACKAGE_FORMAT_VERSION, MANIFEST_FILE, PACKAGE_FORMAT, PACKAGE_FORMAT_VERSION, isPlainFileName, validateManifest } from './manifest.ts';
export type {
  ComponentQuantization, DetailedComponent, FileEntry, GraphIO, GraphName, PackageGraph, PackageManifest, Quantization, QuantizedComponent,
  VerificationAgreement, VerificationReport,
} from './manifest.ts';
export { VERIFIED_STAMP_FILE, readPackage } from './read.ts';
export type { LoadedPackage, ReadPackageOptions } from './read.ts';
export { createPackageStaging, hashFiles, writeManifest } from './write.ts';
export type { PackageStaging } from './write.ts';
export { fileEntry, replaceFile, sha256File } from './files.ts';
export { describePackage, describeQuantization, describeVerification, humanBytes } from './summary.ts';
export type { HashOptions } from './files.ts';
