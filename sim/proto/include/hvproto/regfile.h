/* SPDX-License-Identifier: MIT */
/*
 * regfile.h: reading a Windows `reg export` file of the host's
 * GuestCommunicationServices key (reference 2.2), so a user can load the
 * registrations of their real Hyper-V host into the emulated one.
 */
#ifndef HVSIM_REGFILE_H
#define HVSIM_REGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "hvsim/hvsim.h"

typedef struct hvsim_regfile {
    hvsim_service_info_t *v; /* one per GuestCommunicationServices\<GUID> key */
    size_t n;
} hvsim_regfile_t;

/*
 * hvsim__regfile_parse: parse the bytes of a .reg file.
 * @data, @len: the file, as regedit writes it: UTF-16LE with a BOM
 *   ("Windows Registry Editor Version 5.00"), or UTF-8 with or without a BOM
 *   (also "REGEDIT4").
 * @out: filled with the services found; free with hvsim__regfile_free.
 * @err, @errlen: on failure, a message naming the line and what was expected.
 * Returns 0, -EINVAL (bad encoding, header, key, GUID, or value syntax) or -ENOMEM.
 * On failure *out is left empty. A key without ElementName gets "" (the key exists).
 */
int hvsim__regfile_parse(const uint8_t *data, size_t len, hvsim_regfile_t *out, char *err, size_t errlen);
void hvsim__regfile_free(hvsim_regfile_t *r);

#endif /* HVSIM_REGFILE_H */
