"""The console's words, Bahasa Indonesia and English. Kept apart from the API's message
catalogue (exchange/i18n.py): these are labels of pages, never error messages of the API."""

from __future__ import annotations

from exchange.i18n import Locale

TEXTS: dict[str, dict[Locale, str]] = {
    "yes": {"en": "Yes", "id": "Ya"},
    "no": {"en": "No", "id": "Tidak"},
    "title": {
        "en": "Console",
        "id": "Konsol",
    },
    "hub": {
        "en": "Exchange hub",
        "id": "Hub pertukaran data",
    },
    "skip": {
        "en": "Skip to the content",
        "id": "Langsung ke isi",
    },
    "menu": {
        "en": "Menu",
        "id": "Menu",
    },
    "desk": {
        "en": "Alert desk",
        "id": "Meja peringatan",
    },
    "stats": {"en": "Map and statistics", "id": "Peta dan statistik"},
    "stats_trail": {"en": "Area", "id": "Wilayah"},
    "stats_map_title": {
        "en": "Reports in {area}, {start} to {end}",
        "id": "Laporan di {area}, {start} sampai {end}",
    },
    "stats_reports": {"en": "Reports", "id": "Laporan"},
    "stats_people": {"en": "People at risk", "id": "Orang berisiko"},
    "stats_withheld": {"en": "Withheld", "id": "Disembunyikan"},
    "stats_hotspot": {"en": "Hotspot", "id": "Titik rawan"},
    "stats_hotspot_row": {
        "en": "expected {expected}, {excess} more",
        "id": "diperkirakan {expected}, lebih {excess}",
    },
    "stats_level": {"en": "Show by", "id": "Tampilkan per"},
    "level_kabupaten": {"en": "Regency/city", "id": "Kabupaten/kota"},
    "level_kecamatan": {"en": "District", "id": "Kecamatan"},
    "level_desa": {"en": "Village", "id": "Desa/kelurahan"},
    "stats_from": {"en": "From", "id": "Dari"},
    "stats_to": {"en": "To", "id": "Sampai"},
    "stats_measure": {"en": "Colour by", "id": "Warna menurut"},
    "stats_show": {"en": "Show", "id": "Tampilkan"},
    "stats_summary": {
        "en": "{reports} reports about {people} people at risk from {start} to {end} "
        "({previous} from {before_start} to {before_end}), counting the reports your agency "
        "may read.",
        "id": "{reports} laporan tentang {people} orang berisiko dari {start} sampai {end} "
        "({previous} dari {before_start} sampai {before_end}), dari laporan yang boleh dibaca "
        "instansi Anda.",
    },
    "stats_export_csv": {"en": "Table (CSV)", "id": "Tabel (CSV)"},
    "stats_export_svg": {"en": "Map (SVG)", "id": "Peta (SVG)"},
    "stats_export_png": {"en": "Map (PNG)", "id": "Peta (PNG)"},
    "stats_map_caption": {
        "en": "Darker is more. A ring marks a hotspot: more reports than the area's history "
        "and its neighbours predict. Tap a region for its figures.",
        "id": "Makin gelap makin banyak. Lingkaran menandai titik rawan: laporan lebih banyak "
        "dari perkiraan menurut riwayat wilayah dan tetangganya. Ketuk wilayah untuk angkanya.",
    },
    "stats_previous": {"en": "Period before", "id": "Periode sebelumnya"},
    "stats_change": {"en": "Change", "id": "Perubahan"},
    "stats_rate": {"en": "Per 100,000 inhabitants", "id": "Per 100.000 penduduk"},
    "stats_expected": {"en": "Expected", "id": "Perkiraan"},
    "stats_open": {"en": "Open this area", "id": "Buka wilayah ini"},
    "stats_table_caption": {
        "en": "Reports by {level}, with the period before",
        "id": "Laporan per {level}, dengan periode sebelumnya",
    },
    "stats_total": {"en": "Total", "id": "Jumlah"},
    "stats_trends": {"en": "Modus operandi by month", "id": "Modus operandi per bulan"},
    "stats_trends_caption": {
        "en": "Reports raising each indicator, {first} to {last}; rising: the last month above "
        "what its months before predict",
        "id": "Laporan per indikator, {first} sampai {last}; naik: bulan terakhir di atas "
        "perkiraan dari bulan-bulan sebelumnya",
    },
    "stats_months": {"en": "Months", "id": "Bulan"},
    "stats_last_month": {"en": "Last month", "id": "Bulan terakhir"},
    "stats_rising": {"en": "Rising", "id": "Naik"},
    "stats_destinations": {"en": "Top destinations", "id": "Negara tujuan teratas"},
    "stats_destinations_caption": {
        "en": "Destination countries named in the period's reports",
        "id": "Negara tujuan dalam laporan periode ini",
    },
    "stats_destination": {"en": "Country", "id": "Negara"},
    "sent": {
        "en": "My reports",
        "id": "Laporan saya",
    },
    "logout": {
        "en": "Sign out",
        "id": "Keluar",
    },
    "login": {
        "en": "Sign in",
        "id": "Masuk",
    },
    "username": {
        "en": "Username",
        "id": "Nama pengguna",
    },
    "password": {
        "en": "Password",
        "id": "Kata sandi",
    },
    "sign_in": {
        "en": "Sign in",
        "id": "Masuk",
    },
    "switch_language": {
        "en": "Bahasa Indonesia",
        "id": "English",
    },
    "new_password": {
        "en": "Choose your password",
        "id": "Pilih kata sandi Anda",
    },
    "new_password_why": {
        "en": "The password you were given works once. Choose your own, at least 12 characters.",
        "id": "Kata sandi yang diberikan hanya berlaku sekali. Pilih kata sandi sendiri, "
        "minimal 12 karakter.",
    },
    "save": {
        "en": "Save",
        "id": "Simpan",
    },
    "second_factor": {
        "en": "Authenticator code",
        "id": "Kode autentikator",
    },
    "enrol_totp": {
        "en": "Add this key to your authenticator app, then type the 6-digit code it shows.",
        "id": "Tambahkan kunci ini ke aplikasi autentikator Anda, lalu ketik kode 6 digit yang "
        "muncul.",
    },
    "code": {
        "en": "6-digit code",
        "id": "Kode 6 digit",
    },
    "verify": {
        "en": "Verify",
        "id": "Verifikasi",
    },
    "error_csrf": {
        "en": "The form had expired or did not come from this page. Go back and try again.",
        "id": "Formulir sudah kedaluwarsa atau bukan dari halaman ini. Kembali dan coba lagi.",
    },
    "error_forbidden": {
        "en": "Your role does not open this page.",
        "id": "Peran Anda tidak dapat membuka halaman ini.",
    },
    "error_report_not_found": {
        "en": "No such report.",
        "id": "Laporan tidak ditemukan.",
    },
    "error_report_purged": {
        "en": "This report was purged: its data no longer exists.",
        "id": "Laporan ini telah dimusnahkan: datanya tidak ada lagi.",
    },
    "error_rate_limited": {
        "en": "Too many sign-in attempts from here; wait a minute.",
        "id": "Terlalu banyak percobaan masuk dari sini; tunggu satu menit.",
    },
    "error_other": {
        "en": "The console could not show this page.",
        "id": "Konsol tidak dapat menampilkan halaman ini.",
    },
    "back": {
        "en": "Back to the console",
        "id": "Kembali ke konsol",
    },
    "new_count": {
        "en": "{count} new",
        "id": "{count} baru",
    },
    "state": {
        "en": "State",
        "id": "Status",
    },
    "all": {
        "en": "All",
        "id": "Semua",
    },
    "state_new": {
        "en": "New",
        "id": "Baru",
    },
    "state_acknowledged": {
        "en": "Acknowledged",
        "id": "Sudah dikonfirmasi",
    },
    "state_pending": {
        "en": "Waiting",
        "id": "Menunggu",
    },
    "state_in_flight": {
        "en": "Being delivered",
        "id": "Sedang dikirim",
    },
    "state_retrying": {
        "en": "Retrying",
        "id": "Dicoba lagi",
    },
    "state_delivered": {
        "en": "Delivered",
        "id": "Terkirim",
    },
    "state_dead": {
        "en": "Failed",
        "id": "Gagal",
    },
    "type": {
        "en": "Type",
        "id": "Jenis",
    },
    "filter": {
        "en": "Filter",
        "id": "Saring",
    },
    "refresh": {
        "en": "Refresh",
        "id": "Muat ulang",
    },
    "desk_caption": {
        "en": "Reports routed to your agency, newest first",
        "id": "Laporan yang dikirim ke instansi Anda, terbaru di atas",
    },
    "received": {
        "en": "Received",
        "id": "Diterima",
    },
    "region": {
        "en": "Region",
        "id": "Wilayah",
    },
    "severity": {
        "en": "Severity",
        "id": "Tingkat",
    },
    "nothing": {
        "en": "Nothing here.",
        "id": "Belum ada apa-apa.",
    },
    "sender": {
        "en": "Sender",
        "id": "Pengirim",
    },
    "earlier": {
        "en": "Earlier reports about the same people",
        "id": "Laporan sebelumnya tentang orang yang sama",
    },
    "contents": {
        "en": "Contents",
        "id": "Isi",
    },
    "withheld": {
        "en": "Withheld",
        "id": "Ditahan",
    },
    "withheld_clearance": {
        "en": "not shown: your agency's clearance does not cover this field",
        "id": "tidak ditampilkan: di luar kewenangan instansi Anda",
    },
    "withheld_consent": {
        "en": "not shown: the person did not consent to sharing identifying data",
        "id": "tidak ditampilkan: orang tersebut tidak menyetujui data identitasnya dibagikan",
    },
    "indicator": {"en": "Indicator", "id": "Indikator"},
    "severity_low": {"en": "low", "id": "rendah"},
    "severity_medium": {"en": "medium", "id": "sedang"},
    "severity_high": {"en": "high", "id": "tinggi"},
    "severity_critical": {"en": "critical", "id": "kritis"},
    "thread": {
        "en": "Case thread",
        "id": "Rangkaian kasus",
    },
    "acknowledge": {
        "en": "Acknowledge",
        "id": "Konfirmasi diterima",
    },
    "note": {
        "en": "Note (what you are doing about it)",
        "id": "Catatan (tindak lanjut Anda)",
    },
    "acknowledged_by": {
        "en": "acknowledged by {who}, {when}",
        "id": "dikonfirmasi oleh {who}, {when}",
    },
    "sent_caption": {
        "en": "Reports your agency sent, and where each went",
        "id": "Laporan yang dikirim instansi Anda, dan tujuannya",
    },
    "recipients": {
        "en": "Went to",
        "id": "Dikirim ke",
    },
    "reached_no_one": {
        "en": "Reached no one",
        "id": "Tidak sampai ke siapa pun",
    },
    "audit": {
        "en": "Audit",
        "id": "Audit",
    },
    "admin": {
        "en": "Administration",
        "id": "Administrasi",
    },
    "audit_log": {
        "en": "Exchange log",
        "id": "Log pertukaran",
    },
    "checkpoints": {
        "en": "Checkpoints",
        "id": "Checkpoint",
    },
    "export": {
        "en": "Export (NDJSON)",
        "id": "Ekspor (NDJSON)",
    },
    "offline": {
        "en": "Verify offline, trusting nothing the hub serves",
        "id": "Verifikasi luring, tanpa memercayai apa pun dari hub",
    },
    "offline_why": {
        "en": "This page recomputes every hash from the bytes it shows, but it is served by the"
        " hub itself. To verify independently, download the export or the bundle and run,"
        " on a machine of your own:",
        "id": "Halaman ini menghitung ulang setiap hash dari data yang ditampilkan, tetapi "
        "disajikan oleh hub itu sendiri. Untuk verifikasi mandiri, unduh ekspor atau "
        "bundel lalu jalankan di komputer Anda sendiri:",
    },
    "offline_pin": {
        "en": "Compare the log key with the one your inspectorate pinned at enrolment, not with"
        " this page.",
        "id": "Cocokkan kunci log dengan kunci yang disimpan inspektorat Anda saat pendaftaran,"
        " bukan dengan halaman ini.",
    },
    "latest_checkpoint": {
        "en": "Latest signed checkpoint",
        "id": "Checkpoint bertanda tangan terakhir",
    },
    "tree_size": {
        "en": "Tree size",
        "id": "Ukuran pohon",
    },
    "root_hash": {
        "en": "Root hash",
        "id": "Hash akar",
    },
    "signed_at": {
        "en": "Signed",
        "id": "Ditandatangani",
    },
    "witnesses": {
        "en": "Witnesses",
        "id": "Saksi",
    },
    "no_witness": {
        "en": "no witness cosignature yet",
        "id": "belum ada tanda tangan saksi",
    },
    "log_empty": {
        "en": "The log has no signed checkpoint yet.",
        "id": "Log belum memiliki checkpoint bertanda tangan.",
    },
    "action": {
        "en": "Action",
        "id": "Tindakan",
    },
    "subject": {
        "en": "Subject",
        "id": "Subjek",
    },
    "events_caption": {
        "en": "Events, newest first",
        "id": "Peristiwa, terbaru di atas",
    },
    "leaf": {
        "en": "Leaf",
        "id": "Daun",
    },
    "time": {
        "en": "Time",
        "id": "Waktu",
    },
    "actor": {
        "en": "By",
        "id": "Oleh",
    },
    "details": {
        "en": "Details",
        "id": "Rincian",
    },
    "pending": {
        "en": "pending",
        "id": "menunggu",
    },
    "older": {
        "en": "Older",
        "id": "Lebih lama",
    },
    "checkpoints_caption": {
        "en": "Signed checkpoints, newest first",
        "id": "Checkpoint bertanda tangan, terbaru di atas",
    },
    "consistency": {
        "en": "Consistency",
        "id": "Konsistensi",
    },
    "check_consistency": {
        "en": "check against {size}",
        "id": "periksa terhadap {size}",
    },
    "step_left": {
        "en": "hash with, on the left:",
        "id": "hash dengan, di kiri:",
    },
    "step_right": {
        "en": "hash with, on the right:",
        "id": "hash dengan, di kanan:",
    },
    "old_tree": {
        "en": "old tree",
        "id": "pohon lama",
    },
    "consistent": {
        "en": "Verified: the log only grew between these checkpoints.",
        "id": "Terverifikasi: log hanya bertambah di antara kedua checkpoint ini.",
    },
    "not_consistent": {
        "en": "NOT verified: see the failing step below.",
        "id": "TIDAK terverifikasi: lihat langkah yang gagal di bawah.",
    },
    "checkpoint_signature": {
        "en": "Signature of the checkpoint of size {size}",
        "id": "Tanda tangan checkpoint berukuran {size}",
    },
    "verified": {
        "en": "verified",
        "id": "terverifikasi",
    },
    "differs": {
        "en": "does not match",
        "id": "tidak cocok",
    },
    "consistency_start": {
        "en": "Start from",
        "id": "Mulai dari",
    },
    "reaches_old_root": {
        "en": "The path reaches the old signed root",
        "id": "Jalur mencapai akar lama yang ditandatangani",
    },
    "reaches_new_root": {
        "en": "The path reaches the new signed root",
        "id": "Jalur mencapai akar baru yang ditandatangani",
    },
    "evidence": {
        "en": "Evidence",
        "id": "Bukti",
    },
    "evidence_verified": {
        "en": "Verified: {count} event(s) are in the signed log, unaltered.",
        "id": "Terverifikasi: {count} peristiwa ada di log bertanda tangan, tidak diubah.",
    },
    "evidence_failed": {
        "en": "NOT verified: see the failing step below.",
        "id": "TIDAK terverifikasi: lihat langkah yang gagal di bawah.",
    },
    "signed_receipts": {
        "en": "Signed receipts",
        "id": "Tanda terima bertanda tangan",
    },
    "receipt_explained": {
        "en": "Each receipt is checked against the recipient's key as the log recorded it "
        "(added, approved, not yet revoked) at the receipt's place in the log.",
        "id": "Setiap tanda terima diperiksa dengan kunci penerima sebagaimana dicatat log "
        "(ditambahkan, disetujui, belum dicabut) pada posisi tanda terima itu di log.",
    },
    "download_bundle": {
        "en": "Download the evidence bundle (JSON)",
        "id": "Unduh bundel bukti (JSON)",
    },
    "step_checkpoint": {
        "en": "1. The signed checkpoint",
        "id": "1. Checkpoint bertanda tangan",
    },
    "log_origin": {
        "en": "Log",
        "id": "Log",
    },
    "signature": {
        "en": "Signature (the log's key)",
        "id": "Tanda tangan (kunci log)",
    },
    "step_leaf": {
        "en": "Leaf hash, SHA-256(0x00 ‖ event bytes):",
        "id": "Hash daun, SHA-256(0x00 ‖ byte peristiwa):",
    },
    "step_path": {
        "en": "Up the tree, SHA-256(0x01 ‖ left ‖ right) at each step:",
        "id": "Naik pohon, SHA-256(0x01 ‖ kiri ‖ kanan) di setiap langkah:",
    },
    "step_root": {
        "en": "The result is the signed root",
        "id": "Hasilnya adalah akar yang ditandatangani",
    },
    "pending_events": {
        "en": "{count} more event(s) are recorded but not yet in a signed checkpoint; reload in"
        " a few seconds.",
        "id": "{count} peristiwa lain tercatat tetapi belum masuk checkpoint bertanda tangan; "
        "muat ulang beberapa detik lagi.",
    },
    "error_refused": {
        "en": "Not done",
        "id": "Tidak dilakukan",
    },
    "actions": {
        "en": "Actions",
        "id": "Tindakan",
    },
    "active": {
        "en": "active",
        "id": "aktif",
    },
    "inactive": {
        "en": "inactive",
        "id": "nonaktif",
    },
    "add_user": {
        "en": "Add a user",
        "id": "Tambah pengguna",
    },
    "agencies": {
        "en": "Agencies",
        "id": "Instansi",
    },
    "agency": {
        "en": "Agency",
        "id": "Instansi",
    },
    "kind": {
        "en": "Kind",
        "id": "Jenis",
    },
    "users": {
        "en": "Users",
        "id": "Pengguna",
    },
    "api_keys": {
        "en": "API keys (for systems)",
        "id": "Kunci API (untuk sistem)",
    },
    "approve": {
        "en": "Approve",
        "id": "Setujui",
    },
    "attempts": {
        "en": "Attempts",
        "id": "Percobaan",
    },
    "awaiting_approval": {
        "en": "awaiting a second admin's approval",
        "id": "menunggu persetujuan admin kedua",
    },
    "connector": {
        "en": "Connector",
        "id": "Konektor",
    },
    "create": {
        "en": "Create",
        "id": "Buat",
    },
    "created": {
        "en": "Created",
        "id": "Dibuat",
    },
    "dead_letters": {
        "en": "Dead deliveries",
        "id": "Pengiriman gagal",
    },
    "delete": {
        "en": "Delete",
        "id": "Hapus",
    },
    "disable": {
        "en": "Disable",
        "id": "Nonaktifkan",
    },
    "disabled": {
        "en": "disabled",
        "id": "dinonaktifkan",
    },
    "empty_means_all": {
        "en": "None ticked: every type.",
        "id": "Tidak dicentang: semua jenis.",
    },
    "expires": {
        "en": "expires {when}",
        "id": "berakhir {when}",
    },
    "filters": {
        "en": "Filters",
        "id": "Filter",
    },
    "forget_totp": {
        "en": "Forget authenticator",
        "id": "Lupakan autentikator",
    },
    "hub_keys": {
        "en": "The hub's keys",
        "id": "Kunci hub",
    },
    "hub_settings": {
        "en": "The hub: regions and keys",
        "id": "Hub: wilayah dan kunci",
    },
    "import": {
        "en": "Import",
        "id": "Impor",
    },
    "in_use": {
        "en": "sealing new secrets",
        "id": "dipakai menyegel rahasia baru",
    },
    "indicators": {
        "en": "Indicators (any of, one per line)",
        "id": "Indikator (salah satu, satu per baris)",
    },
    "issue_key": {
        "en": "Issue a key",
        "id": "Terbitkan kunci",
    },
    "label": {
        "en": "Label",
        "id": "Label",
    },
    "last_error": {
        "en": "Last error",
        "id": "Galat terakhir",
    },
    "locked_until": {
        "en": "locked until {when}",
        "id": "terkunci sampai {when}",
    },
    "log_key": {
        "en": "Log verifier key",
        "id": "Kunci verifikasi log",
    },
    "name": {
        "en": "Name",
        "id": "Nama",
    },
    "new_subscription": {
        "en": "New subscription",
        "id": "Langganan baru",
    },
    "recover": {
        "en": "Replay dead deliveries of a period",
        "id": "Kirim ulang pengiriman gagal dalam periode",
    },
    "region_count": {
        "en": "{count} regions in the directory.",
        "id": "{count} wilayah dalam direktori.",
    },
    "region_directory": {
        "en": "Region directory (Kemendagri codes)",
        "id": "Direktori wilayah (kode Kemendagri)",
    },
    "region_file": {
        "en": "Code list (CSV with columns code,name)",
        "id": "Daftar kode (CSV dengan kolom code,name)",
    },
    "regions_filter": {
        "en": "Regions (code prefixes, one per line)",
        "id": "Wilayah (awalan kode, satu per baris)",
    },
    "regions_filter_help": {
        "en": "For example 36.03 for Kabupaten Tangerang; empty: everywhere the rules allow.",
        "id": "Misalnya 36.03 untuk Kabupaten Tangerang; kosong: di mana saja yang diizinkan "
        "aturan.",
    },
    "replay": {
        "en": "Replay",
        "id": "Kirim ulang",
    },
    "report": {
        "en": "Report",
        "id": "Laporan",
    },
    "reset_password": {
        "en": "Reset link",
        "id": "Tautan atur ulang",
    },
    "revoke": {
        "en": "Revoke",
        "id": "Cabut",
    },
    "revoked": {
        "en": "revoked",
        "id": "dicabut",
    },
    "roles": {
        "en": "Roles",
        "id": "Peran",
    },
    "rotation_how": {
        "en": "Rotate sealing keys with 'exchange keys rotate' on the hub's host; older keys "
        "stay to open what they sealed.",
        "id": "Rotasi kunci segel dengan 'exchange keys rotate' di server hub; kunci lama tetap"
        " ada untuk membuka yang telah disegel.",
    },
    "scopes": {
        "en": "Scopes",
        "id": "Cakupan",
    },
    "sealing_keys": {
        "en": "Sealing keys (secrets at rest)",
        "id": "Kunci segel (rahasia tersimpan)",
    },
    "shown_once": {
        "en": "Shown once",
        "id": "Ditampilkan sekali",
    },
    "shown_once_why": {
        "en": "Copy it now: it is shown only this once. The hub keeps only its hash.",
        "id": "Salin sekarang: hanya ditampilkan kali ini. Hub hanya menyimpan hash-nya.",
    },
    "issued_one_time_password": {
        "en": "One-time password",
        "id": "Kata sandi sekali pakai",
    },
    "issued_reset_link": {
        "en": "Password reset link (valid 24 hours, once)",
        "id": "Tautan atur ulang kata sandi (berlaku 24 jam, sekali)",
    },
    "issued_api_key": {
        "en": "API key",
        "id": "Kunci API",
    },
    "issued_subscription_secret": {
        "en": "Webhook signing secret",
        "id": "Rahasia penandatanganan webhook",
    },
    "signing_keys": {
        "en": "Report signing keys",
        "id": "Kunci tanda tangan laporan",
    },
    "pending_signing_keys": {
        "en": "Signing keys awaiting approval",
        "id": "Kunci tanda tangan menunggu persetujuan",
    },
    "since": {
        "en": "From",
        "id": "Dari",
    },
    "until": {
        "en": "Until",
        "id": "Sampai",
    },
    "subscriptions": {
        "en": "Subscriptions",
        "id": "Langganan",
    },
    "test_delivered": {
        "en": "Delivered",
        "id": "Terkirim",
    },
    "test_failed": {
        "en": "Not delivered",
        "id": "Tidak terkirim",
    },
    "test_send": {
        "en": "Test send",
        "id": "Uji kirim",
    },
    "types": {
        "en": "Report types",
        "id": "Jenis laporan",
    },
    "use": {
        "en": "Use",
        "id": "Kegunaan",
    },
    "phone": {
        "en": "Mobile phone",
        "id": "Nomor HP",
    },
    "phone_help": {
        "en": "For reporting by text message, e.g. 0812 3456 7890; optional.",
        "id": "Untuk melapor lewat SMS, mis. 0812 3456 7890; boleh kosong.",
    },
    "valid_until": {
        "en": "Valid until",
        "id": "Berlaku sampai",
    },
    "confirm_title": {
        "en": "Confirm it is you",
        "id": "Konfirmasi bahwa ini Anda",
    },
    "confirm_why": {
        "en": "This action needs a fresh code from your authenticator (it was more than five "
        "minutes since the last).",
        "id": "Tindakan ini memerlukan kode baru dari autentikator Anda (sudah lebih dari lima "
        "menit sejak yang terakhir).",
    },
    "confirm_wrong": {
        "en": "That code was not right (or already used). Try the next one.",
        "id": "Kode itu salah (atau sudah dipakai). Coba kode berikutnya.",
    },
    "confirm_code_help": {
        "en": "Needed if your last code was more than five minutes ago.",
        "id": "Diperlukan bila kode terakhir Anda lebih dari lima menit yang lalu.",
    },
    "signed_roots": {
        "en": "Roots stated by the signed notes",
        "id": "Akar menurut catatan bertanda tangan",
    },
    "field_title": {
        "en": "Report from the field",
        "id": "Lapor dari lapangan",
    },
    "field": {
        "en": "Report",
        "id": "Lapor",
    },
    "report_type": {
        "en": "What are you reporting?",
        "id": "Apa yang Anda laporkan?",
    },
    "send_report": {
        "en": "Send report",
        "id": "Kirim laporan",
    },
    "outbox": {
        "en": "Outbox on this phone",
        "id": "Kotak keluar di HP ini",
    },
    "outbox_why": {
        "en": "Reports written without a signal wait here, encrypted, and go as soon as the "
        "phone is online. Signing out clears them.",
        "id": "Laporan yang ditulis tanpa sinyal menunggu di sini, terenkripsi, dan terkirim "
        "begitu HP online. Keluar dari konsol menghapusnya.",
    },
    "field_needs_script": {
        "en": "The field form needs JavaScript (it works offline). Without it, report through "
        "your office's system.",
        "id": "Formulir lapangan memerlukan JavaScript (agar bisa luring). Tanpa itu, laporkan "
        "lewat sistem kantor Anda.",
    },
    "drafts": {
        "en": "Drafts from text messages",
        "id": "Draf dari SMS",
    },
    "drafts_why": {
        "en": "Text messages the hub could not read whole. Open one to complete it; it is sent "
        "as a report from the form.",
        "id": "SMS yang tidak dapat dibaca utuh oleh hub. Buka untuk melengkapinya; laporan "
        "dikirim dari formulir.",
    },
    "unknown_type": {
        "en": "type not recognised",
        "id": "jenis tidak dikenali",
    },
}
