"""Generate the corpus of ugly intake files under tests/intake/corpus/ (committed; rerun to refresh).

Each file exercises one quirk of real exports; test_parse.py states the exact expected outcome of every
row. Bytes are written explicitly (encodings, BOMs, line endings, NBSP) so that no editor can "fix" them.
The 10 MB single-field file and the file with a late Latin-1 byte are built at test time in tmp_path.

    .venv/bin/python tests/intake/make_corpus.py
"""

from __future__ import annotations

import codecs
from datetime import date, datetime
from pathlib import Path

NBSP = "\u00a0"
NNBSP = "\u202f"

GENERIC_FR = (
    "Référence;N° facture;Date de facture;Échéance;Montant;Devise;Type;Prénom;Nom;Raison sociale;SIREN;"
    "E-mail;Téléphone;Adresse;Complément d'adresse;Code postal;Ville;Pays;Libellé"
)


def _crlf(lines: list[str]) -> str:
    return "".join(line + "\r\n" for line in lines)


def _files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    # `;`, UTF-8 with BOM, French labels, decimal comma with every thousands separator, three date formats.
    files["semicolon_bom_french.csv"] = codecs.BOM_UTF8 + _crlf(
        [
            GENERIC_FR,
            "F-001;FAC-001;31/01/2025;28/02/2025;1 234,50;EUR;;Éloïse;Bénédicte-Núñez;;;eloise@example.fr;"
            "06 12 34 56 78;3 rue des Lilas;;33000;Bordeaux;France;Commande 1",
            f"F-002;FAC-002;2025-02-15;2025-03-15;1{NBSP}234,56;EUR;;Jean;Martin;;;jean@example.fr;;"
            "5 av. Foch;;75016;Paris;FR;",
            f"F-003;;15.03.2025;15-04-2025;1{NNBSP}000{NNBSP}000,00;;;Zoé;Lefèvre;;;zoe@example.fr;;"
            "1 quai Rive;;69001;Lyon;;",
            "F-004;FAC-004;01/04/2025 14:05;;12,5;EUR;entreprise;;;Société Générale d'Équipement;732 829 320;"
            "compta@sge.example;;2 rue du Port;BP 12;13002;Marseille;France;",
            "F-005;FAC-005;02/04/2025;30/04/2025;1.234,50 €;EUR;;Anaïs;Dupont;;;anais@example.be;;"
            "10 rue Haute;;1000;Bruxelles;Belgique;",
        ]
    ).encode("utf-8")

    # `,`, UTF-8 without BOM, English labels, decimal point, quoted "1,234.50", ISO dates with a time.
    files["comma_english.csv"] = _crlf(
        [
            "Reference,Invoice number,Invoice date,Due date,Amount,Currency,First name,Last name,Email,Address,"
            "Postcode,City,Country",
            'E-1,INV-1,2025-01-31T14:05:00,2025-02-28,"1,234.50",EUR,John,O\'Brien,john@example.com,'
            '"1 High St, Flat 2",SW1A 1AA,London,GB',
            'E-2,INV-2,2025-02-01,2025-03-01,"1,234",EUR,Mary,Smith,mary@example.com,2 Low St,EC1A 1BB,London,'
            "United Kingdom",
            "E-3,INV-3,2025-03-01 09:00:00 +0100,,12.50,EUR,Paul,Jones,paul@example.com,3 Mid St,M1 1AA,Manchester,GB",
            "E-4,INV-4,2025-03-02,,€99.99,EUR,Ann,Lee,ann@example.com,4 Top St,B1 1AA,Birmingham,GB",
        ]
    ).encode("utf-8")

    # Tab, CP1252 (Windows Excel "Texte (séparateur : tabulation)"): Œ, €, — exist in CP1252, not Latin-1.
    files["tab_cp1252.csv"] = _crlf(
        [
            "external_ref\tinvoice_date\tamount\tdebtor.first_name\tdebtor.last_name\tdebtor.city\tdescription",
            "T-1\t31/12/2024\t1 234,50 €\tFrançoise\tŒuvray-Lefèvre\tSaint-Étienne\tFacture n°12 — acompte",
            "T-2\t01.02.2025\t99,90\tJosé\tMüller\tNîmes\t«Livraison»",
        ]
    ).encode("cp1252")

    # `,` and ISO 8859-1 (Latin-1), with decimal-comma amounts quoted because the delimiter is a comma.
    files["latin1_comma.csv"] = (
        "reference,invoice date,amount,first name,last name\n"
        'L-1,31/12/2024,"12,50",Hélène,Çàéùî\n'
        'L-2,31/12/2024,"1 000,00",Noël,Gaëtan\n'
    ).encode("latin-1")

    # Excel "Unicode Text": UTF-16 LE with BOM, tab-delimited.
    files["excel_unicode.txt"] = codecs.BOM_UTF16_LE + _crlf(
        [
            "Reference\tInvoice date\tAmount\tLast name",
            "U-1\t31/12/2024\t45,00\tZoë",
        ]
    ).encode("utf-16-le")

    # Quoted fields spanning lines (LF inside, CRLF inside, `;` and "" inside): still one row each.
    files["quoted_newlines.csv"] = (
        "Référence;Date de facture;Montant;Nom;Adresse;Libellé\r\n"
        'Q-1;31/12/2024;10,00;Martin;"3 rue des Lilas\nBâtiment B";"Ligne 1\r\nLigne 2 ; avec point-virgule"\r\n'
        'Q-2;31/12/2024;20,00;Durand;"1 place ""du"" Marché";\r\n'
    ).encode()

    files["empty.csv"] = b""
    files["blank_lines.csv"] = b"\r\n\r\n;;;\r\n"
    files["header_only.csv"] = "Référence;Date de facture;Montant;Nom\r\n".encode()
    files["unknown_columns.csv"] = _crlf(
        [
            "Référence;Date de facture;Montant;Nom;Notes internes;Vendeur",
            "U-1;31/12/2024;10,00;Martin;à relancer;Paul",
        ]
    ).encode("utf-8")
    files["missing_columns.csv"] = _crlf(["Référence;Date de facture;Nom", "M-1;31/12/2024;Martin"]).encode("utf-8")

    # One row per quirk of the issue, in a French `;` file (decimal comma proven by row 2).
    files["ugly_rows.csv"] = _crlf(
        [
            "Référence;Date de facture;Montant;Devise;Nom;Adresse;Téléphone;Libellé",
            "R-1;31/12/2024;120,50;EUR;Martin;3 rue des Lilas;06 12 34 56 78;ok",  # 2 ok
            "R-1;31/12/2024;80,00;EUR;Martin;3 rue des Lilas;;same ref",  # 3 ok, duplicate of row 2
            "R-3;31/12/2024;0;EUR;Durand;1 rue;;zero",  # 4 amount.not_positive
            "R-4;31/12/2024;-12,50;EUR;Durand;1 rue;;negative",  # 5 amount.not_positive
            "R-5;31/12/2024;12,345;EUR;Durand;1 rue;;three decimals",  # 6 amount.too_many_decimals
            "R-6;31/02/2026;12,00;EUR;Durand;1 rue;;impossible date",  # 7 date.impossible
            "R-7;31/12/2024;douze euros;EUR;Durand;1 rue;;text amount",  # 8 amount.not_a_number
            'R-8;31/12/2024;15,00;EUR;"=HYPERLINK(""http://x"",""y"")";1 rue;;formula',  # 9 ok, verbatim
            "R-9;12/31/2026;15,00;EUR;Durand;1 rue;;US date",  # 10 date.impossible
            "",  # 11 blank, skipped
            "R-11;31/12/2024;1,234;EUR;Durand;1 rue;;comma thousands?",  # 12 amount.too_many_decimals
            "R-12;31/12/2024;1,2,3;EUR;Durand;1 rue;;garbage",  # 13 amount.separators
            "R-13;31/12/2024;;EUR;Durand;1 rue;;no amount",  # 14 amount.empty
            "R-14;31/12/2024;12;50;EUR;Durand;1 rue;;unquoted",  # 15 currency.unsupported + row.too_many_fields
            "R-15;2026/12/31;15,00;EUR;Durand;1 rue;;slash ISO",  # 16 date.format
            ";31/12/2024;15,00;EUR;Durand;1 rue;;no ref",  # 17 required
            "R-17;31/12/2024;12,50 €;EUR;Petit;1 rue;;euro sign",  # 18 ok
            f"R-18;31/12/2024;1{NBSP}234,50;EUR;Petit;- Bâtiment B;'+33612345678;@home",  # 19 ok
            "R-19;31/12/2024;15,00;XYZ;Petit;1 rue;;bad currency",  # 20 currency.unsupported
            "R-20;31/12/2024;12,50 €;GBP;Petit;1 rue;;mismatch",  # 21 amount.currency_mismatch
            "R-21;31/02/2026;-3;EUR;Petit;1 rue;;two errors",  # 22 date.impossible + amount.not_positive
        ]
    ).encode("utf-8")

    # Decimal point proven by "12.50": "1,234" is then one thousand two hundred and thirty-four.
    files["dot_decimal.csv"] = _crlf(
        [
            "Reference,Invoice date,Amount,Last name",
            "D-1,2025-01-31,12.50,Martin",
            'D-2,2025-01-31,"1,234",Durand',
            'D-3,2025-01-31,"1,234,567.89",Petit',
        ]
    ).encode("utf-8")

    # Nothing proves the decimal separator: values readable both ways are refused, the others parse.
    files["ambiguous.csv"] = _crlf(
        [
            "Référence;Date de facture;Montant;Nom",
            "A-1;31/12/2024;1,234;Martin",
            "A-2;31/12/2024;500;Durand",
            "A-3;31/12/2024;2.500;Petit",
        ]
    ).encode("utf-8")

    # Shopify admin → Orders → Export: one row per line item, order fields on the first row only.
    shopify_header = [
        "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
        "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount",
        "Shipping Method", "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price",
        "Lineitem sku", "Billing Name", "Billing Street", "Billing Address1", "Billing Address2",
        "Billing Company", "Billing City", "Billing Zip", "Billing Province", "Billing Country",
        "Billing Phone", "Notes", "Payment Method", "Outstanding Balance", "Id", "Tags", "Phone",
        "Payment Terms Name", "Next Payment Due At",
    ]  # fmt: skip

    def shopify(**values: str) -> str:
        cells = [values.get(h, "") for h in shopify_header]
        return ",".join(f'"{c}"' if ("," in c or '"' in c) else c for c in cells)

    files["shopify_orders.csv"] = (
        "\n".join(
            [
                ",".join(shopify_header),
                shopify(
                    **{
                        "Name": "#1001",
                        "Email": "jeanne@example.fr",
                        "Financial Status": "pending",
                        "Currency": "EUR",
                        "Subtotal": "100.00",
                        "Total": "120.00",
                        "Created at": "2025-01-15 10:30:00 +0100",
                        "Lineitem quantity": "1",
                        "Lineitem name": "Chaise",
                        "Billing Name": "Jeanne Martin",
                        "Billing Street": "3 rue des Lilas",
                        "Billing Address1": "3 rue des Lilas",
                        "Billing City": "Bordeaux",
                        "Billing Zip": "'33000",
                        "Billing Country": "FR",
                        "Billing Phone": "+33612345678",
                        "Outstanding Balance": "120.00",
                        "Id": "5551001",
                    }
                ),
                shopify(**{"Name": "#1001", "Lineitem quantity": "2", "Lineitem name": "Table"}),
                shopify(
                    **{
                        "Name": "#1002",
                        "Email": "paul@example.fr",
                        "Financial Status": "partially_paid",
                        "Currency": "EUR",
                        "Total": "59.90",
                        "Created at": "2025-01-16 09:00:00 +0100",
                        "Billing Name": "Paul Durand",
                        "Billing Address1": "1 rue de l'Église",
                        "Billing City": "Bourg-en-Bresse",
                        "Billing Zip": "'01000",
                        "Billing Country": "FR",
                        "Phone": "0612345678",
                        "Payment Terms Name": "Net 30",
                        "Next Payment Due At": "2025-02-15 09:00:00 +0100",
                    }
                ),
                shopify(
                    **{
                        "Name": "#1003",
                        "Email": "anne@example.be",
                        "Currency": "EUR",
                        "Total": "1234.50",
                        "Created at": "2025-01-17 11:00:00 +0100",
                        "Billing Name": "Anne Dubois",
                        "Billing Company": "Dubois SPRL",
                        "Billing Address1": "10 rue Haute",
                        "Billing City": "Bruxelles",
                        "Billing Zip": "1000",
                        "Billing Country": "BE",
                    }
                ),
            ]
        )
        + "\n"
    ).encode("utf-8")

    # WooCommerce "Customer / Order / Coupon Export", default CSV format (column keys).
    woo_header = [
        "order_id", "order_number", "order_number_formatted", "order_date", "status", "shipping_total",
        "tax_total", "discount_total", "order_total", "order_currency", "payment_method", "customer_id",
        "billing_first_name", "billing_last_name", "billing_full_name", "billing_company", "billing_email",
        "billing_phone", "billing_address_1", "billing_address_2", "billing_postcode", "billing_city",
        "billing_state", "billing_country", "customer_note",
    ]  # fmt: skip
    woo_rows = [
        ["188", "188", "188", "2025-01-20 14:05:00", "on-hold", "5.00", "20.00", "0.00", "125.00", "EUR",
         "bacs", "7", "Léa", "Girard", "Léa Girard", "", "lea@example.fr", "0611223344", "4 rue Neuve", "",
         "44000", "Nantes", "", "FR", ""],
        ["189", "", "", "2025-01-21 08:00:00", "pending", "0.00", "0.00", "0.00", "35.5", "EUR", "cheque",
         "8", "Marc", "Roux", "Marc Roux", "Roux SARL", "marc@example.fr", "", "9 bd Sud", "Bât. C", "31000",
         "Toulouse", "", "FR", "Livrer le matin"],
    ]  # fmt: skip
    files["woocommerce_orders.csv"] = _crlf(
        [",".join(woo_header)] + [",".join(f'"{c}"' if "," in c else c for c in row) for row in woo_rows]
    ).encode("utf-8")

    # PrestaShop back office (French) → Commandes → Exporter: `;`, country name, "J. Martin", "120,50 €".
    files["prestashop_orders.csv"] = _crlf(
        [
            "ID;Référence;Nouveau client;Livraison;Client;Total;Paiement;État;Date",
            "12;XKBKNABJK;Oui;France;J. Martin;120,50 €;Virement bancaire;En attente de paiement;31/12/2024 14:05:00",
            "13;OHSATSERP;Non;Belgique;A. Dubois;1 234,00 €;Chèque;En attente de paiement;02/01/2025 09:10:11",
        ]
    ).encode("utf-8")
    return files


def _xlsx(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Créances"
    ws.append(["Référence", "Date de facture", "Échéance", "Montant", "Nom", "Code postal", "Libellé"])
    ws.append(["X-1", datetime(2025, 1, 31, 14, 5), date(2025, 2, 28), 1234.5, "Martin", 33000, "float"])
    ws.append(["X-2", "31/01/2025", None, "1 234,50", None, "01000", "text amount"])
    ws.cell(row=3, column=5).value = '=HYPERLINK("http://x","y")'
    ws.cell(row=3, column=5).data_type = "s"  # a text cell that looks like a formula, as a CSV import makes
    ws.append(["X-3", datetime(2025, 2, 1), None, 12.345, "Durand", "33000", "three decimals"])
    ws.append(["X-4", datetime(2025, 2, 1), None, 0, "Durand", "33000", "zero"])
    ws.append([None] * 7)  # row 6: empty
    ws.append(["X-5", datetime(2025, 2, 1), None, 0.1 + 0.2, "Petit", "33000", "binary noise"])
    ws.append(["X-6", "31/02/2025", None, -5, "Petit", "33000", "two errors"])
    ws.append(["X-7", date(2025, 2, 1), None, "douze", "Petit", "33000", "text"])
    other = wb.create_sheet("Autres")
    other.append(["Reference", "Invoice date", "Amount", "Last name"])
    other.append(["Y-1", "2025-03-01", "7.00", "Other"])
    fixed = datetime(2025, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.save(path)


def build(target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in _files().items():
        path = target / name
        path.write_bytes(content)
        written.append(path)
    _xlsx(target / "orders.xlsx")
    written.append(target / "orders.xlsx")
    return written


if __name__ == "__main__":
    for p in build(Path(__file__).parent / "corpus"):
        print(p.relative_to(Path(__file__).parent))
