from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_provider_accounts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="provideraccount",
            name="provider",
            field=models.CharField(
                choices=[
                    ("generic", "Signed webhook (any provider)"),
                    ("mpesa", "M-Pesa (Safaricom Daraja)"),
                    ("stripe", "Stripe (cards, OXXO)"),
                    ("whatsapp", "WhatsApp Business (Cloud API)"),
                ],
                max_length=20,
                verbose_name="provider",
            ),
        ),
    ]
