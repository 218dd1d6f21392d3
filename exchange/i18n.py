"""Messages in English and Indonesian, chosen per request by ``Accept-Language``.

A message is carried as a :class:`Text` (a catalogue key and its parameters) until the moment
it is rendered for one reader, so an error raised deep in a service is still shown in the
reader's language. The catalogue keeps both languages of a message side by side so that a
missing translation is visible in review (and caught by a test).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Locale = Literal["en", "id"]
DEFAULT_LOCALE: Locale = "en"
SUPPORTED_LOCALES: tuple[Locale, ...] = ("en", "id")

CATALOGUE: dict[str, dict[Locale, str]] = {
    # Requests in general
    "request.malformed_json": {
        "en": "The request body is not valid JSON: {reason}.",
        "id": "Isi permintaan bukan JSON yang sah: {reason}.",
    },
    "request.nul_in_parameter": {
        "en": "The parameter '{name}' holds U+0000, which no field can hold.",
        "id": "Parameter '{name}' memuat U+0000, yang tidak dapat disimpan.",
    },
    "request.rate_limited": {
        "en": "Too many requests from this key; try again in {seconds} s.",
        "id": "Terlalu banyak permintaan dari kunci ini; coba lagi dalam {seconds} detik.",
    },
    "request.not_committed": {
        "en": "The request could not be stored; send it again (a submission with its "
        "Idempotency-Key).",
        "id": "Permintaan gagal disimpan; kirim lagi (pengiriman laporan dengan "
        "Idempotency-Key-nya).",
    },
    "request.overloaded": {
        "en": "The hub is at capacity; send the request again in {seconds} s (a submission "
        "with its Idempotency-Key).",
        "id": "Hub sedang penuh; kirim lagi permintaan dalam {seconds} detik (pengiriman "
        "laporan dengan Idempotency-Key-nya).",
    },
    "request.too_large": {
        "en": "The request body is larger than the limit of {limit} bytes.",
        "id": "Isi permintaan melebihi batas {limit} bita.",
    },
    "request.invalid": {
        "en": "The request is not valid; see details.",
        "id": "Permintaan tidak sah; lihat rincian.",
    },
    "request.route_not_found": {
        "en": "No endpoint at {path}.",
        "id": "Tidak ada titik akhir di {path}.",
    },
    "request.method_not_allowed": {
        "en": "Method {method} is not allowed at {path}.",
        "id": "Metode {method} tidak diizinkan di {path}.",
    },
    "request.database_unavailable": {
        "en": "The database is unavailable for a moment. Send the request again after the "
        "Retry-After delay (a submission with its Idempotency-Key, so that it is stored once).",
        "id": "Basis data sedang tidak tersedia. Kirim lagi permintaan setelah jeda "
        "Retry-After (pengiriman laporan dengan Idempotency-Key-nya, agar tersimpan sekali).",
    },
    "request.internal": {
        "en": "The hub could not complete the request; quote incident {incident} to the operator.",
        "id": "Hub tidak dapat menyelesaikan permintaan; sebutkan insiden {incident} ke operator.",
    },
    # Field validation (pydantic error types)
    "validation.missing": {"en": "This field is required.", "id": "Kolom ini wajib diisi."},
    "validation.extra_forbidden": {
        "en": "This field is not allowed.",
        "id": "Kolom ini tidak diperbolehkan.",
    },
    "validation.string_type": {"en": "Must be a string.", "id": "Harus berupa teks."},
    "validation.string_too_short": {
        "en": "Must have at least {min_length} characters.",
        "id": "Minimal {min_length} karakter.",
    },
    "validation.string_too_long": {
        "en": "Must have at most {max_length} characters.",
        "id": "Maksimal {max_length} karakter.",
    },
    "validation.string_pattern_mismatch": {
        "en": "Must match the pattern {pattern}.",
        "id": "Harus sesuai pola {pattern}.",
    },
    "validation.enum": {
        "en": "Must be one of: {expected}.",
        "id": "Harus salah satu dari: {expected}.",
    },
    "validation.literal_error": {
        "en": "Must be one of: {expected}.",
        "id": "Harus salah satu dari: {expected}.",
    },
    "validation.int_parsing": {"en": "Must be an integer.", "id": "Harus bilangan bulat."},
    "validation.int_type": {"en": "Must be an integer.", "id": "Harus bilangan bulat."},
    "validation.bool_type": {"en": "Must be true or false.", "id": "Harus true atau false."},
    "validation.bool_parsing": {"en": "Must be true or false.", "id": "Harus true atau false."},
    "validation.list_type": {"en": "Must be an array.", "id": "Harus berupa larik."},
    "validation.model_attributes_type": {
        "en": "Must be a JSON object.",
        "id": "Harus berupa objek JSON.",
    },
    "validation.dict_type": {"en": "Must be a JSON object.", "id": "Harus berupa objek JSON."},
    "validation.datetime_parsing": {
        "en": "Must be an RFC 3339 date-time.",
        "id": "Harus tanggal-waktu RFC 3339.",
    },
    "validation.datetime_from_date_parsing": {
        "en": "Must be an RFC 3339 date-time.",
        "id": "Harus tanggal-waktu RFC 3339.",
    },
    "validation.timezone_aware": {
        "en": "Must carry a time zone offset.",
        "id": "Harus menyertakan zona waktu.",
    },
    "validation.datetime_future": {
        "en": "Must be in the future.",
        "id": "Harus di masa depan.",
    },
    "validation.value_error": {"en": "{reason}", "id": "{reason}"},
    "validation.instant_range": {
        "en": "This moment is outside the range the hub keeps.",
        "id": "Waktu ini di luar rentang yang disimpan hub.",
    },
    "validation.scope_unknown": {
        "en": "Unknown scope '{scope}'; scopes are {known}.",
        "id": "Cakupan '{scope}' tidak dikenal; cakupan yang ada: {known}.",
    },
    "validation.expiry_past": {
        "en": "The expiry must be in the future.",
        "id": "Waktu kedaluwarsa harus di masa depan.",
    },
    "validation.expiry_person": {
        "en": "A key issued by a person expires within a year: choose a date up to {limit}.",
        "id": "Kunci yang diterbitkan seseorang berlaku paling lama setahun: pilih tanggal "
        "sampai {limit}.",
    },
    "validation.expiry_beyond_granter": {
        "en": "A key may not outlive the key that creates it; expire at {limit} or earlier.",
        "id": "Kunci tidak boleh berlaku lebih lama dari kunci pembuatnya; "
        "kedaluwarsa paling lambat {limit}.",
    },
    "validation.datetime_out_of_range": {
        "en": "A moment outside the years 1 to 9999 in UTC.",
        "id": "Waktu di luar tahun 1 sampai 9999 dalam UTC.",
    },
    "validation.too_short": {
        "en": "Must have at least {min_length} items.",
        "id": "Minimal {min_length} butir.",
    },
    "validation.greater_than": {"en": "Must be greater than {gt}.", "id": "Harus lebih dari {gt}."},
    "validation.less_than_equal": {
        "en": "Must be at most {le}.",
        "id": "Paling besar {le}.",
    },
    "validation.greater_than_equal": {
        "en": "Must be at least {ge}.",
        "id": "Paling kecil {ge}.",
    },
    # Authentication and authorisation
    "auth.missing": {
        "en": "Authentication required: send 'Authorization: Bearer <api key>'.",
        "id": "Perlu autentikasi: kirim 'Authorization: Bearer <kunci API>'.",
    },
    "auth.invalid": {
        "en": "The API key is not valid.",
        "id": "Kunci API tidak sah.",
    },
    "auth.expired": {
        "en": "The API key has expired.",
        "id": "Kunci API sudah kedaluwarsa.",
    },
    "auth.revoked": {
        "en": "The API key has been revoked.",
        "id": "Kunci API sudah dicabut.",
    },
    "auth.agency_inactive": {
        "en": "Agency {agency} is deactivated.",
        "id": "Instansi {agency} dinonaktifkan.",
    },
    "auth.scope_missing": {
        "en": "This API key lacks the '{scope}' scope.",
        "id": "Kunci API ini tidak memiliki cakupan '{scope}'.",
    },
    "auth.not_own_agency": {
        "en": "Only the hub admin or agency {agency} itself may do this.",
        "id": "Hanya admin hub atau instansi {agency} sendiri yang boleh melakukan ini.",
    },
    "auth.admin_from_hub_only": {
        "en": "Only the hub admin may create a key with the 'admin' scope.",
        "id": "Hanya admin hub yang boleh membuat kunci dengan cakupan 'admin'.",
    },
    "auth.hub_admin_only": {
        "en": "Only an admin key of the hub's operator may do this.",
        "id": "Hanya kunci admin operator hub yang boleh melakukan ini.",
    },
    "auth.scope_not_grantable": {
        "en": "A key may only grant scopes it holds itself; '{scope}' is not one of them.",
        "id": "Kunci hanya boleh memberikan cakupan miliknya; '{scope}' bukan salah satunya.",
    },
    # Agencies and their keys
    "agency.not_found": {
        "en": "No agency with id '{agency}'.",
        "id": "Tidak ada instansi dengan id '{agency}'.",
    },
    "agency.exists": {
        "en": "An agency with id '{agency}' already exists.",
        "id": "Instansi dengan id '{agency}' sudah ada.",
    },
    "agency.key_not_found": {
        "en": "Agency '{agency}' has no key '{key}'.",
        "id": "Instansi '{agency}' tidak memiliki kunci '{key}'.",
    },
    "agency.key_already_revoked": {
        "en": "Key '{key}' is already revoked.",
        "id": "Kunci '{key}' sudah dicabut.",
    },
    "agency.signing_key_invalid": {
        "en": "Not an Ed25519 public key: {reason}.",
        "id": "Bukan kunci publik Ed25519: {reason}.",
    },
    "agency.signing_key_not_pending": {
        "en": "Signing key {key} is not awaiting approval.",
        "id": "Kunci tanda tangan {key} tidak sedang menunggu persetujuan.",
    },
    "agency.signing_key_same_admin": {
        "en": "A signing key must be approved by another admin key than the one that added it.",
        "id": "Kunci tanda tangan harus disetujui oleh kunci admin lain, "
        "bukan yang menambahkannya.",
    },
    "agency.signing_key_exists": {
        "en": "This public key is already registered as '{key}'.",
        "id": "Kunci publik ini sudah terdaftar sebagai '{key}'.",
    },
    "validation.jurisdiction_format": {
        "en": "Must be a region-code prefix such as 36, 36.03, 36.03.11 or 36.03.11.2009.",
        "id": "Harus awalan kode wilayah seperti 36, 36.03, 36.03.11 atau 36.03.11.2009.",
    },
    "validation.slug_format": {
        "en": "Must be 3-63 lowercase letters, digits or hyphens, starting with a letter.",
        "id": "Harus 3-63 huruf kecil, angka atau tanda hubung, diawali huruf.",
    },
    # Report schemas
    "registry.unknown_type": {
        "en": "Unknown report type '{type}'; known types: {known}.",
        "id": "Jenis laporan '{type}' tidak dikenal; jenis yang ada: {known}.",
    },
    "registry.unknown_version": {
        "en": "Report type '{type}' has no version {version}; known versions: {known}.",
        "id": "Jenis laporan '{type}' tidak memiliki versi {version}; versi yang ada: {known}.",
    },
    "schema.expected": {"en": "Expected {expected}.", "id": "Seharusnya {expected}."},
    "schema.enum_labelled": {
        "en": "Must be one of: {values}.",
        "id": "Harus salah satu dari: {values}.",
    },
    "schema.required": {
        "en": "The field '{property}' is required.",
        "id": "Kolom '{property}' wajib diisi.",
    },
    "schema.type": {"en": "Must be of type {types}.", "id": "Harus bertipe {types}."},
    "schema.enum": {"en": "Must be one of: {options}.", "id": "Harus salah satu dari: {options}."},
    "schema.pattern": {
        "en": "Does not match the pattern {pattern}.",
        "id": "Tidak sesuai pola {pattern}.",
    },
    "schema.format": {"en": "Is not a valid {format}.", "id": "Bukan {format} yang sah."},
    "schema.minItems": {
        "en": "Must have at least {limit} item(s).",
        "id": "Minimal {limit} butir.",
    },
    "schema.maxItems": {"en": "Must have at most {limit} items.", "id": "Maksimal {limit} butir."},
    "schema.minLength": {
        "en": "Must have at least {limit} character(s).",
        "id": "Minimal {limit} karakter.",
    },
    "schema.maxLength": {
        "en": "Must have at most {limit} characters.",
        "id": "Maksimal {limit} karakter.",
    },
    "schema.minimum": {"en": "Must be at least {limit}.", "id": "Paling kecil {limit}."},
    "schema.maximum": {"en": "Must be at most {limit}.", "id": "Paling besar {limit}."},
    "schema.additionalProperties": {
        "en": "Fields not allowed here: {unexpected}.",
        "id": "Kolom yang tidak diperbolehkan di sini: {unexpected}.",
    },
    "schema.uniqueItems": {
        "en": "Items must not repeat.",
        "id": "Butir tidak boleh berulang.",
    },
    # Reports
    "report.rate_limited": {
        "en": "Too many reports from this key; try again in {seconds} s.",
        "id": "Terlalu banyak laporan dari kunci ini; coba lagi dalam {seconds} detik.",
    },
    "report.type_forbidden": {
        "en": "A {kind} agency may not submit '{type}' reports; allowed: {allowed}.",
        "id": "Instansi jenis {kind} tidak boleh mengirim laporan '{type}'; yang boleh: {allowed}.",
    },
    "report.invalid": {
        "en": "The report breaks {count} rule(s); see details.",
        "id": "Laporan melanggar {count} aturan; lihat rincian.",
    },
    "report.unknown_ref": {
        "en": "No report with id '{id}'.",
        "id": "Tidak ada laporan dengan id '{id}'.",
    },
    "report.signature_malformed": {
        "en": 'Exchange-Signature must be keyid="<key id>", sig="<base64url signature>".',
        "id": 'Exchange-Signature harus berbentuk keyid="<id kunci>", '
        'sig="<tanda tangan base64url>".',
    },
    "report.signature_required": {
        "en": "Agency {agency} must sign its reports (Exchange-Signature).",
        "id": "Instansi {agency} wajib menandatangani laporannya (Exchange-Signature).",
    },
    "report.signature_unknown_key": {
        "en": "No active signing key '{key}' is registered for this agency.",
        "id": "Tidak ada kunci tanda tangan aktif '{key}' untuk instansi ini.",
    },
    "report.signature_wrong": {
        "en": "The signature does not match the canonical payload.",
        "id": "Tanda tangan tidak cocok dengan payload kanonis.",
    },
    "report.idempotency_conflict": {
        "en": "Idempotency-Key '{key}' was used with a different request body.",
        "id": "Idempotency-Key '{key}' sudah dipakai dengan isi permintaan yang berbeda.",
    },
    "report.batch_failed": {
        "en": "This line's batch could not be stored; submit the line again.",
        "id": "Kelompok baris ini gagal disimpan; kirim ulang baris ini.",
    },
    "report.unknown_recipient": {
        "en": "No agency '{id}'.",
        "id": "Tidak ada instansi '{id}'.",
    },
    "report.tlp_raised": {
        "en": "The marking was raised from {asked} to {tlp}: a referenced report is {tlp}, "
        "and the stricter marking wins.",
        "id": "Penandaan dinaikkan dari {asked} ke {tlp}: laporan yang dirujuk bertanda {tlp}, "
        "dan penandaan yang lebih ketat berlaku.",
    },
    "report.no_recipient": {
        "en": "No agency but the sender would receive this report: no subscription wants it, "
        "and it names no recipient who has one. Name the receiving agency in 'recipients', or "
        'send it with "allow_no_recipient": true to keep it without delivering it.',
        "id": "Tidak ada instansi selain pengirim yang akan menerima laporan ini: tidak ada "
        "langganan yang menginginkannya, dan tidak ada penerima bernama yang berlangganan. "
        "Sebutkan instansi penerima di 'recipients', atau kirim dengan "
        '"allow_no_recipient": true untuk menyimpannya tanpa dikirim.',
    },
    "report.no_recipient_tlp": {
        "en": "No agency but the sender would receive this report: its marking {tlp} withholds "
        "it from {withheld}, who subscribed to it. Name them in 'recipients' or choose a wider "
        "marking.",
        "id": "Tidak ada instansi selain pengirim yang akan menerima laporan ini: penandaan {tlp} "
        "menahannya dari {withheld}, yang berlangganan. Sebutkan mereka di 'recipients' atau "
        "pilih penandaan yang lebih luas.",
    },
    "report.no_recipient_kept": {
        "en": "Accepted without any recipient, as asked: no agency will receive this report.",
        "id": "Diterima tanpa penerima, sesuai permintaan: tidak ada instansi yang akan "
        "menerima laporan ini.",
    },
    "report.future_time": {
        "en": "{value} is in the future (the hub's clock says {now}); give the time it happened.",
        "id": "{value} berada di masa depan (jam hub menunjukkan {now}); isi waktu kejadiannya.",
    },
    "report.outside_jurisdiction": {
        "en": "Region {code} lies outside the sender's area ({jurisdiction}); the report is "
        "accepted, please check the code.",
        "id": "Wilayah {code} berada di luar wilayah kerja pengirim ({jurisdiction}); laporan "
        "diterima, mohon periksa kodenya.",
    },
    "report.bad_cursor": {
        "en": "Not a cursor this hub gave out; start again without 'after'.",
        "id": "Bukan kursor dari hub ini; mulai lagi tanpa 'after'.",
    },
    "person.not_cleared": {
        "en": "Your agency is not cleared for identifying data, so it may not look people up.",
        "id": "Instansi Anda tidak berwenang atas data pengenal, sehingga tidak dapat mencari "
        "orang.",
    },
    "person.one_identifier": {
        "en": "Give exactly one of 'nik' and 'passport_number'.",
        "id": "Isi tepat satu dari 'nik' dan 'passport_number'.",
    },
    "report.phone_normalised": {
        "en": "Stored in E.164 form; the payload hash is of the stored payload, "
        "submitted_hash in the audit log of the one sent.",
        "id": "Disimpan dalam bentuk E.164; hash payload adalah hash payload yang disimpan, "
        "submitted_hash di log audit adalah hash yang dikirim.",
    },
    "report.without_consent": {
        "en": "The person has not consented to sharing their data: recipients get the "
        "referral without any identifying field (name, NIK, passport, phone, birth date, "
        "narrative), as the HTCDS guidance allows.",
        "id": "Orang tersebut belum menyetujui pembagian datanya: penerima mendapat rujukan "
        "tanpa data pengenal apa pun (nama, NIK, paspor, telepon, tanggal lahir, narasi), "
        "sesuai pedoman HTCDS.",
    },
    "report.purged": {
        "en": "Report {report} was purged: its data no longer exists.",
        "id": "Laporan {report} telah dimusnahkan: datanya tidak ada lagi.",
    },
    "report.not_found": {
        "en": "No report with id '{report}'.",
        "id": "Tidak ada laporan dengan id '{report}'.",
    },
    # Region directory
    "regions.bad_file": {
        "en": "Not a region code list: {reason}.",
        "id": "Bukan daftar kode wilayah: {reason}.",
    },
    "regions.unknown_code": {
        "en": "Region code {code} does not exist; the nearest existing one is {parent}.",
        "id": "Kode wilayah {code} tidak ada; kode terdekat yang ada adalah {parent}.",
    },
    "regions.unknown_code_no_parent": {
        "en": "Region code {code} does not exist, nor does any region enclosing it.",
        "id": "Kode wilayah {code} tidak ada, begitu pula wilayah induknya.",
    },
    "regions.nik_district_unknown": {
        "en": "The NIK's district {district} is not in the region directory.",
        "id": "Kecamatan {district} pada NIK tidak ada dalam daftar wilayah.",
    },
    # Console users
    "user.confirm_needed": {
        "en": "Confirm with your authenticator: type its 6-digit code in the form.",
        "id": "Konfirmasi dengan autentikator Anda: ketik kode 6 digitnya di formulir.",
    },
    "user.bad_phone": {
        "en": "This is not a telephone number (e.g. 0812 3456 7890 or +62 812 3456 7890).",
        "id": "Ini bukan nomor telepon (mis. 0812 3456 7890 atau +62 812 3456 7890).",
    },
    "user.phone_taken": {
        "en": "Another user already has this telephone number.",
        "id": "Nomor telepon ini sudah dipakai pengguna lain.",
    },
    "intake.unknown_plugin": {
        "en": "No intake named '{name}' is installed.",
        "id": "Tidak ada intake bernama '{name}' yang terpasang.",
    },
    "intake.not_found": {
        "en": "No intake with id '{id}'.",
        "id": "Tidak ada intake dengan id '{id}'.",
    },
    "intake.draft_not_found": {
        "en": "No open draft with id '{id}'.",
        "id": "Tidak ada draf terbuka dengan id '{id}'.",
    },
    "intake.refused": {
        "en": "The channel's request was refused: {reason}.",
        "id": "Permintaan kanal ditolak: {reason}.",
    },
    "user.bad_username": {
        "en": "A username is 3 to 64 lower-case letters, digits, dots, hyphens or underscores, "
        "starting with a letter.",
        "id": "Nama pengguna terdiri dari 3 sampai 64 huruf kecil, angka, titik, tanda hubung "
        "atau garis bawah, diawali huruf.",
    },
    "user.no_role": {
        "en": "Give the user at least one role.",
        "id": "Beri pengguna minimal satu peran.",
    },
    "user.hub_admin_only_operator": {
        "en": "Only users of the hub's operator may be hub administrators.",
        "id": "Hanya pengguna operator hub yang dapat menjadi administrator hub.",
    },
    "user.taken": {
        "en": "The username '{username}' is taken.",
        "id": "Nama pengguna '{username}' sudah dipakai.",
    },
    "user.not_found": {
        "en": "No user '{username}'.",
        "id": "Tidak ada pengguna '{username}'.",
    },
    "user.login_refused": {
        "en": "The username, password or code is wrong, or the account cannot sign in now.",
        "id": "Nama pengguna, kata sandi atau kode salah, atau akun tidak dapat masuk saat ini.",
    },
    "user.session_ended": {
        "en": "Your session has ended; sign in again.",
        "id": "Sesi Anda telah berakhir; silakan masuk lagi.",
    },
    "user.short_password": {
        "en": "A password needs at least {length} characters.",
        "id": "Kata sandi minimal {length} karakter.",
    },
    "user.reset_invalid": {
        "en": "This reset link is not valid (used, expired or unknown).",
        "id": "Tautan atur ulang ini tidak berlaku (sudah dipakai, kedaluwarsa atau "
        "tidak dikenal).",
    },
    # Administration in the console
    "admin.no_scope": {
        "en": "Tick at least one scope for the key.",
        "id": "Centang setidaknya satu cakupan untuk kunci.",
    },
    "admin.no_file": {"en": "Choose a file to import.", "id": "Pilih berkas untuk diimpor."},
    "admin.not_utf8": {
        "en": "The file is not UTF-8 text.",
        "id": "Berkas bukan teks UTF-8.",
    },
    "form.invalid_field": {
        "en": "{field}: {reason}",
        "id": "{field}: {reason}",
    },
    # Backup and restore
    "backup.bad_recipient": {
        "en": "Not an age X25519 recipient (age1...): {value}.",
        "id": "Bukan penerima age X25519 (age1...): {value}.",
    },
    "backup.bad_identity": {
        "en": "The identity file holds no age X25519 identity (AGE-SECRET-KEY-1...).",
        "id": "Berkas identitas tidak berisi identitas age X25519 (AGE-SECRET-KEY-1...).",
    },
    "backup.undecryptable": {
        "en": "The backup cannot be decrypted with this identity, or is not an age file.",
        "id": "Cadangan tidak dapat didekripsi dengan identitas ini, atau bukan berkas age.",
    },
    "backup.not_a_backup": {
        "en": "Not an exchange backup: {reason}.",
        "id": "Bukan cadangan hub: {reason}.",
    },
    "backup.tool_failed": {
        "en": "{tool} failed: {reason}",
        "id": "{tool} gagal: {reason}",
    },
    "backup.target_not_empty": {
        "en": "{what} is not empty; restore into an empty database and key folder "
        "(or pass --force to overwrite them).",
        "id": "{what} tidak kosong; pulihkan ke basis data dan folder kunci yang kosong "
        "(atau gunakan --force untuk menimpanya).",
    },
    "backup.other_database": {
        "en": "The backup is of a {backup} database; EXCHANGE_DATABASE_URL is {target}.",
        "id": "Cadangan ini dari basis data {backup}; EXCHANGE_DATABASE_URL adalah {target}.",
    },
    # The audit log
    "audit.no_checkpoint": {
        "en": "The log has no signed checkpoint yet.",
        "id": "Log belum memiliki checkpoint bertanda tangan.",
    },
    "audit.bad_range": {"en": "Out of range: {reason}.", "id": "Di luar rentang: {reason}."},
    "audit.event_not_found": {
        "en": "No audit event with id '{event}'.",
        "id": "Tidak ada peristiwa audit dengan id '{event}'.",
    },
    "audit.event_pending": {
        "en": "Audit event '{event}' is not in the tree yet; retry in a second.",
        "id": "Peristiwa audit '{event}' belum masuk pohon; coba lagi sebentar.",
    },
    "audit.checkpoint_not_found": {
        "en": "No signed checkpoint of size {size}.",
        "id": "Tidak ada checkpoint bertanda tangan berukuran {size}.",
    },
    "audit.witness_name_taken": {
        "en": "Witness name '{name}' already cosigns with another key.",
        "id": "Nama saksi '{name}' sudah menandatangani bersama dengan kunci lain.",
    },
    "audit.unknown_witness_key": {
        "en": "The cosignature matches no active signing key of agency {agency}.",
        "id": "Cosignature tidak cocok dengan kunci tanda tangan aktif instansi {agency}.",
    },
    "audit.bad_cosignature": {
        "en": "The cosignature is not valid: {reason}.",
        "id": "Cosignature tidak sah: {reason}.",
    },
    # Operations
    "routing.backfill_range": {
        "en": "A backfill covers more than nothing and at most the retention of the types "
        "asked for ({days} days).",
        "id": "Backfill harus lebih dari nol dan paling lama masa simpan jenis laporan yang "
        "diminta ({days} hari).",
    },
    "routing.subscription_limit": {
        "en": "The agency already has {limit} subscriptions, the most it may hold; delete one "
        "first.",
        "id": "Instansi sudah memiliki {limit} langganan, batas maksimumnya; hapus satu dahulu.",
    },
    "routing.unknown_type": {
        "en": "Unknown report type '{type}'.",
        "id": "Jenis laporan '{type}' tidak dikenal.",
    },
    "routing.unknown_connector": {
        "en": "No connector named '{connector}' is installed.",
        "id": "Tidak ada konektor bernama '{connector}' yang terpasang.",
    },
    "routing.config_refused": {
        "en": "This hub will not deliver there: {reason}.",
        "id": "Hub ini tidak akan mengirim ke sana: {reason}.",
    },
    "routing.subscription_not_found": {
        "en": "No subscription {id}.",
        "id": "Tidak ada langganan {id}.",
    },
    "routing.no_secret": {
        "en": "Subscriptions through '{connector}' have no secret to rotate.",
        "id": "Langganan melalui '{connector}' tidak memiliki rahasia untuk dirotasi.",
    },
    "delivery.not_found": {
        "en": "No delivery {id}.",
        "id": "Tidak ada pengiriman {id}.",
    },
    "delivery.still_due": {
        "en": "Delivery {id} is {state} and already on its way; it cannot be replayed now.",
        "id": "Pengiriman {id} berstatus {state} dan sedang diproses; belum dapat diulang.",
    },
    "delivery.subscription_inactive": {
        "en": "The subscription of delivery {id} is no longer active.",
        "id": "Langganan untuk pengiriman {id} tidak aktif lagi.",
    },
    "delivery.not_sent": {
        "en": "Delivery {id} has not been sent yet.",
        "id": "Pengiriman {id} belum dikirim.",
    },
    "delivery.not_read": {
        "en": "Delivery {id} waits in the inbox unread: read it before signing a receipt.",
        "id": "Pengiriman {id} belum dibaca di kotak masuk: baca dulu sebelum menandatangani"
        " tanda terima.",
    },
    "delivery.receipt_unknown_key": {
        "en": "No active signing key '{key}' of your agency.",
        "id": "Tidak ada kunci tanda tangan aktif '{key}' milik instansi Anda.",
    },
    "delivery.receipt_wrong": {
        "en": "The receipt signature does not verify against the envelope's datahash.",
        "id": "Tanda tangan tanda terima tidak cocok dengan datahash amplop.",
    },
    "delivery.bad_cursor": {
        "en": "Not a cursor this hub issued.",
        "id": "Bukan kursor yang diterbitkan hub ini.",
    },
    "delivery.bad_range": {
        "en": "'since' must be before 'until'.",
        "id": "'since' harus sebelum 'until'.",
    },
    "protection.purge_what": {
        "en": "Name one report to purge, or --expired; not both.",
        "id": "Sebutkan satu laporan untuk dimusnahkan, atau --expired; tidak keduanya.",
    },
    "protection.unseal_failed": {
        "en": "A sealed value could not be opened with the hub's keys.",
        "id": "Nilai tersegel tidak dapat dibuka dengan kunci hub.",
    },
    "config.invalid": {
        "en": "The hub cannot start: {problem}.",
        "id": "Hub tidak dapat dijalankan: {problem}.",
    },
    "ops.not_ready": {
        "en": "The hub is not ready: {components} unavailable.",
        "id": "Hub belum siap: {components} tidak tersedia.",
    },
    "ops.probe_not_found": {
        "en": "No probe with id '{probe}'.",
        "id": "Tidak ada probe dengan id '{probe}'.",
    },
    "regions.bad_boundaries": {
        "en": "This is not a boundary file the hub can read: {reason}.",
        "id": "Berkas batas wilayah ini tidak dapat dibaca hub: {reason}.",
    },
    "stats.public_year": {
        "en": (
            "Public tables cover one whole calendar year that has "
            "ended: give from=YYYY-01-01 and to=YYYY-12-31, or neither for last year."
        ),
        "id": (
            "Tabel publik mencakup satu tahun kalender penuh yang sudah berakhir: "
            "isi from=YYYY-01-01 dan to=YYYY-12-31, atau kosongkan keduanya untuk tahun lalu."
        ),
    },
    "stats.day_range": {
        "en": "Must be a day from {first} to {last}.",
        "id": "Harus tanggal dari {first} sampai {last}.",
    },
    "stats.bad_period": {
        "en": "The period starts after it ends.",
        "id": "Periode dimulai setelah berakhir.",
    },
    "stats.long_period": {
        "en": "A period is at most ten years long.",
        "id": "Periode paling panjang sepuluh tahun.",
    },
    "stats.within_level": {
        "en": "Must be a province, regency or district code above the level {level}.",
        "id": "Harus kode provinsi, kabupaten/kota atau kecamatan di atas tingkat {level}.",
    },
    "stats.unknown_type": {
        "en": "No report type is called {type}.",
        "id": "Tidak ada jenis laporan bernama {type}.",
    },
    "stats.public_filters": {
        "en": (
            "Public tables take no filter: tables filtered two ways "
            "would differ by the withheld cells. Use group_by instead."
        ),
        "id": (
            "Tabel publik tidak menerima filter: dua tabel dengan "
            "filter berbeda akan membuka sel yang disembunyikan. Gunakan group_by."
        ),
    },
    "stats.one_of": {"en": "Must be one of {values}.", "id": "Harus salah satu dari {values}."},
    "stats.bad_date": {"en": "Must be a date, YYYY-MM-DD.", "id": "Harus tanggal, YYYY-MM-DD."},
    "stats.reader": {
        "en": "Say whose counts: --agency ID (what that agency may see) or --public.",
        "id": (
            "Sebutkan hitungan siapa: --agency ID (yang boleh dilihat instansi itu) atau --public."
        ),
    },
    "stats.none": {"en": "None", "id": "Tidak ada"},
    "stats.unknown": {"en": "Not given", "id": "Tidak diisi"},
    "stats.unplaced": {
        "en": "Not placed down to {level}",
        "id": "Tanpa lokasi sampai tingkat {level}",
    },
}


@dataclass(frozen=True)
class Text:
    """A message not yet rendered: a catalogue key and the values for its placeholders."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, locale: Locale) -> str:
        templates = CATALOGUE[self.key]
        values = {
            name: value.get(locale, value[DEFAULT_LOCALE])
            if isinstance(value, Localised)
            else value
            for name, value in self.params.items()
        }
        return templates.get(locale, templates[DEFAULT_LOCALE]).format(**values)


class Localised(dict[str, str]):
    """A placeholder value given in each language (a schema's own English and Indonesian
    words), picked when the message is rendered."""


def t(message_key: str, /, **params: object) -> Text:
    """A catalogue message; fails at once on a key the catalogue does not have."""
    if message_key not in CATALOGUE:
        raise KeyError(f"no message {message_key!r} in the catalogue")
    return Text(message_key, params)


def negotiate(accept_language: str | None) -> Locale:
    """The supported locale the ``Accept-Language`` header (RFC 9110) prefers, else English.

    Our own few lines: the header's grammar is small and the libraries that parse it (Babel)
    bring a locale database the hub does not need for two languages.
    """
    if not accept_language:
        return DEFAULT_LOCALE
    best: tuple[float, int, Locale] | None = None
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-", 1)[0]
        locale = _as_locale(primary)
        if locale is None or quality <= 0:
            continue
        # Higher quality wins; among equals, the earlier tag.
        candidate = (quality, -position, locale)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else DEFAULT_LOCALE


def _as_locale(primary_tag: str) -> Locale | None:
    if primary_tag == "en":
        return "en"
    if primary_tag in {"id", "in"}:  # "in" is the withdrawn ISO 639 code still sent by old clients
        return "id"
    return None
